"""A local worker's process: ``python -m caviar.distributed.worker_process FD`` serves a pool
worker on the connection ``FD`` (:func:`caviar.distributed.local_workers.serve`).

Its own module, which the package does not import, so that ``-m`` runs it once: run as
``-m caviar.distributed.local_workers``, the module the package imports would run a second
time as ``__main__`` (and Python says so on every worker's stderr).
"""

import sys
from multiprocessing.connection import Connection

from caviar.distributed.local_workers import serve

if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
