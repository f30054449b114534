"""The thread policy: how many threads numpy's BLAS, OpenMP and torch may use, decided here only.

Most of ibcheck's tensors are small (training loops on a few hundred points, tangent kernels of
a few hundred blocks, SVDs of Jacobians with a few thousand entries).  At these sizes a second
thread only adds hand-offs, and on a loaded machine the spinning thread pools of OpenBLAS and
OpenMP cost far more than the arithmetic (measured on the shared 2-core machine, issue 18:
``run_check(kernel-fit-1d)`` 23.1 s with the default threads vs 4.7 s on one; ``tangent_kernel``
over 444 small blocks 9.3 s vs 0.71 s; eigvalsh of 27 matrices 100 x 100 1.2 s vs 0.05 s).
Large linear algebra (a Gram matrix's Cholesky, the SVD of a big Jacobian) is the opposite: it
runs near the matmul peak and scales with the cores.  So:

* :func:`small_work` (a context manager; :func:`single_threaded` decorates a function with it)
  runs its body on one thread; checks run inside it (``run_check``, every executor's tasks).
* :func:`large_work` runs its body on :func:`large_threads` threads; :func:`for_entries` picks
  one of the two by the size of the matrix (:data:`LARGE_ENTRIES`).

The policy (``ibcheck --threads auto|N``, :func:`configure`) sets :func:`large_threads`:
``auto`` is this process's share of the CPUs it may use (all of them in-process; ``CPUs // jobs``
in each worker of a process pool, so that the workers together do not oversubscribe), ``N`` is N.
Small work always runs on one thread.  :func:`describe` is the line recorded in reports.

Limits are process-wide (BLAS and OpenMP have no per-thread setting): tasks that share a process
in several threads (a Dask worker with ``nthreads > 1``) share them too, which is why the shipped
Dask executor starts one thread per worker process.  In a process forked from a parent that may
have used OpenMP, torch stays on one thread (libgomp's pool does not survive ``fork``; the child
would hang), while numpy's OpenBLAS (fork-safe) follows the policy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading

from theory.errors import IbcheckError

#: matrices with at least this many entries count as large linear algebra (below it, on a loaded
#: machine thread hand-offs made a 366 x 65 SVD take 0.3-0.9 s instead of 1 ms)
LARGE_ENTRIES = 4_000_000

_lock = threading.Lock()
_policy: int | None = None  # None: auto
_share = 1  # how many tasks of this run share the CPUs this process may use
_torch_may_thread = True  # False in a forked worker (libgomp's pool does not survive fork)
_current: int | None = None  # the limit in force inside small_work/large_work, None outside


def available_cpus() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_policy(text: str | int | None) -> int | None:
    """``auto`` (or None) -> None; a positive integer (or its text) -> itself; else :class:`IbcheckError`."""
    if text is None or text == "auto":
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or str(text).strip() != str(value):
        raise IbcheckError(f"--threads takes 'auto' or a positive integer, got {text!r}")
    return value


def configure(threads: str | int | None = "auto", share: int | None = None, torch_may_thread: bool | None = None) -> None:
    """Set the policy: ``threads`` (``auto`` or N) and, for workers, how many tasks share the CPUs."""
    global _policy, _share, _torch_may_thread
    _policy = parse_policy(threads)
    if share is not None:
        _share = max(1, int(share))
    if torch_may_thread is not None:
        _torch_may_thread = torch_may_thread


def policy() -> str:
    """``auto`` or the number given, as text (what ``--threads`` took)."""
    return "auto" if _policy is None else str(_policy)


def large_threads() -> int:
    """Threads for large linear algebra under the policy."""
    return _policy if _policy is not None else max(1, available_cpus() // _share)


def describe() -> dict:
    """The policy as recorded in reports' environment."""
    return {"threads": policy(), "large_linear_algebra_threads": large_threads(), "small_tensor_threads": 1}


@functools.lru_cache(maxsize=4)
def _controller(loaded_modules: int):
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries (a 1-5 ms scan), rescanned when new
    modules have been imported since (a new extension module may have loaded another BLAS)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def limited(threads: int):
    """Run the body with BLAS, OpenMP and torch limited to ``threads`` (restored afterwards).

    Nested limits apply the innermost; entering the limit already in force costs nothing.
    """
    global _current
    if threads == _current:
        yield
        return
    import torch

    torch_threads = 1 if not _torch_may_thread else threads
    with _lock:
        outer, _current = _current, threads
        before = torch.get_num_threads()
        torch.set_num_threads(torch_threads)
    try:
        # BLAS only: OpenMP is torch's (set above); limiting it here would undo torch_threads
        with _controller(len(sys.modules)).limit(limits=threads, user_api="blas"):
            yield
    finally:
        with _lock:
            torch.set_num_threads(before)
            _current = outer


def small_work():
    """Context: one thread for BLAS, OpenMP and torch (small tensors; see the module docstring)."""
    return limited(1)


def large_work():
    """Context: :func:`large_threads` threads (large linear algebra)."""
    return limited(large_threads())


def for_entries(entries: int):
    """:func:`large_work` for a matrix of at least :data:`LARGE_ENTRIES` entries, else :func:`small_work`."""
    return large_work() if entries >= LARGE_ENTRIES else small_work()


def single_threaded(fn):
    """Decorator: run ``fn`` inside :func:`small_work`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with small_work():
            return fn(*args, **kwargs)
    return wrapper
