"""The tuning job: a config, the ask → fit → tell loop over a pool, halving and the endgame,
the live progress line, the demo and the models a search keeps.

:func:`caviar.search.job.tune` is the entry; :mod:`caviar.search.config` (with its sections)
says what a study is, :mod:`caviar.search.loop` runs it. Nothing is imported here, so the
command line reads the demo's config without loading torch.
"""
