"""Workers as processes of this machine: the transport of ``--devices`` without ``--ray``.

Why processes and not threads: on a CPU, one single-threaded pool per core beats one pool
spreading each small kernel over every core (the budget benchmark on the 2-core CPU: 1.06-1.31x
the model-epochs per second, 1.30-1.34x the configurations with halving, idle or busy; the
book's search: 1.0-1.1x; README), and Python threads would share one interpreter lock. Why
not Ray: nothing to install, and a worker starts in the time it takes to import torch.

Each worker is a fresh Python (``python -m caviar.distributed.worker_process FD``) running
:func:`serve` over one end of a socket pair: it builds a
:class:`~caviar.distributed.workers.PoolWorker` from the training data, then answers calls,
one at a time, in order. The data is shared, not copied: the driver writes it once, already in
the study's dtype, to an anonymous in-memory file (``memfd_create``) that every worker maps
read-only (``torch.load(mmap=True)``), so N workers hold one copy between them (full MNIST:
180 MiB in all, instead of 540 MiB more per worker as float64 sent and float32 made from it).
The file lives while any process holds it, so nothing is left behind when the driver is
killed. Where the system has no ``memfd_create`` (macOS, Windows), each worker is sent its own
copy over the socket. Not :mod:`multiprocessing`: a fork would inherit the
driver's OpenMP and CUDA state, which neither survives, and its ``spawn`` runs the driver's main
script again in every worker, so a script calling :func:`caviar.tune` without an ``if __name__
== "__main__"`` guard would start workers without end. A call that raises in the worker raises
in the driver with the worker's traceback. A worker that dies mid-call closes its end of the
socket, so the driver's read fails at once (:class:`WorkerDied`); a driver that dies closes its
end, so the worker's next read fails and it exits. Workers ignore Ctrl-C: the driver, which the
terminal interrupts too, ends them after it has put the study in order.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import torch

from caviar.distributed.cluster import WorkerPlan
from caviar.distributed.spread import StartTimeout
from caviar.distributed.workers import PoolWorker
from caviar.nn import TrainingData
from caviar.nn.engine import DTYPES

#: seconds a worker has to exit on its own before it is killed
_EXIT_SECONDS = 1.0


class WorkerDied(RuntimeError):
    """A worker process ended while the driver waited for it."""


class WorkerFailed(RuntimeError):
    """A call raised in a worker, and its exception could not travel back as itself."""


def _send(conn: Connection, message: Any) -> None:
    """Plain pickle, tensors copied: a Connection's own pickler would hand torch tensors over
    as shared-memory handles, which only processes started by :mod:`multiprocessing` open."""
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _receive(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


#: the arrays of a TrainingData, as the shared file holds them
_ARRAYS = ("x_train", "y_train", "x_val", "y_val")


def _share(training: TrainingData, dtype: torch.dtype) -> int | None:
    """An anonymous in-memory file holding ``training``'s arrays (features in ``dtype``, the
    pool's own conversion made once here), or None where the system has no memfd_create."""
    if not hasattr(os, "memfd_create"):
        return None
    fd = os.memfd_create("caviar-training-data")  # close-on-exec: each worker gets it in
    # pass_fds, no other child of the driver does
    arrays = {name: getattr(training, name) for name in _ARRAYS}
    arrays = {  # contiguous, so a mapped worker reads them in place
        name: None if t is None else (t.to(dtype) if name.startswith("x") else t).contiguous()
        for name, t in arrays.items()
    }
    with os.fdopen(os.dup(fd), "wb") as file:
        torch.save({**arrays, "n_classes": training.n_classes}, file)
    return fd


def _mapped(fd: int) -> TrainingData:
    """The training data in the shared file ``fd``, mapped read-only (copy on write)."""
    stored = torch.load(f"/proc/self/fd/{fd}", mmap=True, weights_only=True)
    os.close(fd)  # the mapping keeps the file
    return TrainingData(**{name: stored[name] for name in _ARRAYS}, n_classes=stored["n_classes"])


def _traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def serve(conn: Connection) -> None:
    """A worker process's life: read the training data and the worker's options, build the
    pool, then answer ``(method, args)`` calls with ``("ok", result)`` or
    ``("error", exception)`` until the driver hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    worker: PoolWorker | None = None
    try:
        data, options = _receive(conn)
    except (EOFError, OSError):
        return
    try:
        if isinstance(data, int):  # a shared file's descriptor, passed to this process
            data = _mapped(data)
        worker = PoolWorker(data, **options)
    except Exception as e:  # answered at the first call (describe), where the driver waits
        failure: BaseException | None = e
    else:
        failure = None
    del data
    while True:
        try:
            method, args = _receive(conn)
        except (EOFError, OSError):  # the driver is done, or gone: nothing here to keep
            os._exit(0)
        try:
            if worker is None:
                assert failure is not None
                raise failure
            answer: tuple[str, Any] = ("ok", getattr(worker, method)(*args))
        except Exception as e:
            e.add_note("in the worker process:\n" + _traceback(e))
            try:  # one that pickles but cannot be rebuilt would fail in the driver's read
                pickle.loads(pickle.dumps(e))
            except Exception:
                e = WorkerFailed(_traceback(e))
            answer = ("error", e)
        try:
            _send(conn, answer)
        except OSError:
            return
        except Exception:  # the exception does not pickle: send its text
            _send(conn, ("error", WorkerFailed(_traceback(answer[1]))))


@dataclass
class LocalWorker:
    """The driver's handle on one worker process."""

    process: subprocess.Popen[bytes]
    conn: Connection
    device: str
    sending: threading.Thread | None = None  # the training data, on its way


class LocalTransport:
    """Starts, calls and ends worker processes of this machine (see the module docstring)."""

    lost: tuple[type[Exception], ...] = (WorkerDied,)
    failed_start: tuple[type[Exception], ...] = (WorkerDied,)

    def __init__(self, training: TrainingData, *, threads: int, **options: Any) -> None:
        self.training, self.threads, self.options = training, threads, options
        self.started: list[LocalWorker] = []
        self.shared = _share(training, DTYPES[options["dtype"]])  # closed by close()

    def start(self, plan: WorkerPlan) -> LocalWorker:
        ours, theirs = socket.socketpair()
        shared = [] if self.shared is None else [self.shared]
        command = [sys.executable, "-m", "caviar.distributed.worker_process", str(theirs.fileno())]
        with theirs:  # the worker's end lives in the worker only: its death is our EOF
            try:
                process = subprocess.Popen(
                    command,
                    pass_fds=[theirs.fileno(), *shared],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            except OSError as e:  # no process to be had (the limit on processes, memory)
                ours.close()
                raise WorkerDied(
                    f"a worker process on {plan.device} could not start: {e.strerror or e}"
                ) from e
        worker = LocalWorker(process, Connection(ours.detach()), plan.device)
        self.started.append(worker)
        options = {
            **self.options,
            "device": plan.device,
            "threads": self.threads if plan.device == "cpu" else 1,
        }
        # sent while the worker imports torch, and while the next worker starts: a socket
        # takes the data (where it is not shared) only as fast as the worker reads it
        data = self.training if self.shared is None else self.shared
        worker.sending = threading.Thread(
            target=self._post, args=(worker, (data, options)), daemon=True
        )
        worker.sending.start()
        return worker

    def _post(self, handle: LocalWorker, message: Any) -> None:
        with contextlib.suppress(OSError):  # dead: get() says so
            _send(handle.conn, message)

    def call(self, handle: LocalWorker, method: str, *args: Any) -> LocalWorker:
        if handle.sending is not None:
            handle.sending.join()
            handle.sending = None
        self._post(handle, (method, args))
        return handle

    def get(self, pending: list[LocalWorker], timeout: float | None = None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for worker in pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                if not worker.conn.poll(left):
                    raise StartTimeout
                status, value = _receive(worker.conn)
            except (EOFError, OSError):
                raise self._died(worker) from None
            if status == "error":
                raise value
            results.append(value)
        return results

    def _died(self, worker: LocalWorker) -> WorkerDied:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(_EXIT_SECONDS)
        code = worker.process.returncode
        if code is None:
            how = "stopped answering"
        elif code < 0:
            how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return WorkerDied(f"the worker process {worker.process.pid} on {worker.device} {how}")

    def kill(self, handle: LocalWorker) -> None:
        self._end([handle])

    def _end(self, workers: list[LocalWorker]) -> None:
        """Hang up on ``workers``: a waiting one reads EOF and exits at once; one still in an
        epoch (a run interrupted) is killed after :data:`_EXIT_SECONDS`."""
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.close()
        deadline = time.monotonic() + _EXIT_SECONDS
        for worker in workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            with contextlib.suppress(ValueError):
                self.started.remove(worker)

    def where(self) -> str:
        return "they are processes of this machine, each importing torch"

    def close(self) -> None:
        self._end(list(self.started))
        if self.shared is not None:  # freed once no worker maps it
            os.close(self.shared)
            self.shared = None
