"""The ground floor: what every room may use and nothing here uses a room.

Errors and the one validator (:class:`~caviar.core.constraints.Constraint`), the records a
study and its engine exchange, seeds, CPU threads, Ctrl-C handling and the version.
"""
