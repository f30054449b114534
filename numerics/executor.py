"""Where checks run: a small executor interface, a local process pool and a serial executor.

An executor runs ``work(item, say)`` for every item and yields ``(index, value)`` as each one
finishes, in any order.  ``say(message)`` is the task's progress callback; an executor that can
forward it calls ``notify(index, message)`` in the caller's process (``notify(index, "")`` when
a task starts).  A task that raises, or whose worker process dies, yields a :class:`Failed`
value instead of stopping the others.

* :class:`ProcessExecutor` (default): a pool of local worker processes, one task per process
  at a time; small-tensor work on one thread each (parallelism is across processes), large
  linear algebra on the worker's share of the CPUs (:mod:`numerics.threads`).
* :class:`SerialExecutor`: everything in the calling process (``--jobs 1``, debugging).
* :class:`~numerics.clusters.DaskExecutor` and :class:`~numerics.clusters.RayExecutor`
  (``--executor dask[:ADDRESS]``, ``--executor ray[:ADDRESS]``): a Dask or Ray cluster, a local
  one when no address is given (optional extras ``ibcheck[dask]``, ``ibcheck[ray]``).
* Anything else with the same ``run`` method: see ``docs/reports.md`` and
  :func:`executor_from_name` (``--executor module:factory``).

An executor may hold resources (a cluster, a client): :meth:`Executor.close` releases them, and
an executor is a context manager that closes itself.  Every executor runs tasks under the thread
policy of :mod:`numerics.threads` (in-process, in each pool worker, on each cluster worker).
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import gc
import importlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from theory.errors import IbcheckError

from . import threads

Say = Callable[[str], None]
Work = Callable[[Any, Say], Any]
Notify = Callable[[int, str], None]


@dataclass(frozen=True)
class Failed:
    """The value of a task that raised or whose worker died; ``reason`` is one line."""

    reason: str
    detail: str = ""


def guarded(work: Work, item: Any, say: Say) -> Any:
    """``work(item, say)``, with an exception turned into :class:`Failed` (the trace kept)."""
    try:
        return work(item, say)
    except Exception as err:  # noqa: BLE001 - a failing task must not stop the others
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return Failed(last, traceback.format_exc(limit=8))


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    return threads.available_cpus()


def remote_task(work: Work, item: Any, threads_policy: str, share: int | None) -> Any:
    """One task on a cluster worker: the submitting run's thread policy (``share`` tasks share the
    worker's CPUs; None: as many as it has CPUs), no progress bars, failures as :class:`Failed`."""
    os.environ["IBCHECK_PROGRESS"] = "0"
    threads.configure(threads_policy, share=share or threads.available_cpus())
    return guarded(work, item, lambda message: None)


class Executor(ABC):
    """Runs tasks; see the module docstring for the contract of :meth:`run`."""

    #: one line for reports, e.g. "local process pool, 2 workers"
    description: str = ""

    @abstractmethod
    def run(self, work: Work, items: Sequence[Any], notify: Notify | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, work(items[index], say))`` (or a :class:`Failed`) as tasks finish."""

    def close(self) -> None:
        """Release what the executor holds (a cluster, a client); the base class holds nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class SerialExecutor(Executor):
    """One task after the other in the calling process."""

    description = "serial, in-process"

    def run(self, work, items, notify=None):
        notify = notify or (lambda index, message: None)
        for index, item in enumerate(items):
            notify(index, "")
            yield index, guarded(work, item, lambda message, index=index: notify(index, message))


# ---- the local process pool ------------------------------------------------------------
# Worker-side state, set by the pool initializer.
_MESSAGES = None
_STARTED = None


def _init_worker(messages, started, parent: int, threads_policy: str, share: int, forked: bool) -> None:
    global _MESSAGES, _STARTED
    _die_with_parent(parent)
    _MESSAGES, _STARTED = messages, started
    os.environ["IBCHECK_PROGRESS"] = "0"  # the parent draws the bars; nested ones would garble
    # large linear algebra gets this worker's share of the CPUs; torch stays on one thread in a
    # forked worker (numerics.threads)
    threads.configure(threads_policy, share=share, torch_may_thread=not forked)
    # one thread per worker: parallelism is across processes, and a forked child must not use
    # the OpenMP pool its parent may have started (it would hang)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")  # importing it here would cost seconds per worker
    if torch is not None:
        torch.set_num_threads(1)


def _die_with_parent(parent: int) -> None:
    """End this worker when ``parent`` (the process that started the pool) dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL to the worker when its parent exits
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls ``os.getppid()`` once a
    second.  A parent that died before the watch was set is caught by comparing ``getppid()``
    with ``parent`` afterwards.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        watched = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no prctl: not Linux
        watched = False
    if os.getppid() != parent:
        os._exit(1)
    if not watched:
        def watch():
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="ibcheck-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _run_in_worker(work: Work, index: int, item: Any) -> Any:
    _STARTED[index] = os.getpid()
    _MESSAGES.put((index, ""))
    # short messages travel in one pipe write (atomic below PIPE_BUF), so a worker that dies
    # mid-message cannot leave half a message for the parent to block on
    return guarded(work, item, lambda message: _MESSAGES.put((index, str(message)[:200])))


class ProcessExecutor(Executor):
    """A pool of ``jobs`` local worker processes.

    The start method is ``fork`` where available (workers inherit the loaded check registry,
    including checks registered at run time) and ``spawn`` elsewhere (workers load
    :data:`numerics.checks.CHECK_MODULES`).  If a worker process dies (a crash, or killed for
    memory), the tasks it may have been running are rerun one at a time in a fresh process; the
    one that dies again is reported as :class:`Failed` and the others go on.  Workers never
    outlive the process that started them, even one killed by SIGKILL (:func:`_die_with_parent`).

    Tasks are handed out one at a time, each to the worker that just became free, and items with
    the same ``affinity`` attribute (the suite's tasks: their activation) go to the same worker
    where possible (:func:`_next_task`): a worker remembers the symbolic derivations and exact
    kernels it computed, so an activation's checks in one worker derive its transform once, not
    once per worker.

    With ``fork``, the parent's objects are frozen (``gc.freeze``) while the pool forks and runs,
    and given back after: a forked worker inherits them (torch, sympy, matplotlib, the check
    registry: some 3 x 10^5 objects, none of them garbage), and unfrozen, every full collection in
    a worker traverses all of them again and, touching their headers, copies their memory pages
    from the parent.  Frozen, a worker's collections scan only what the worker made (five
    activations' tasks in one process: 0.55 -> 0.26 CPU-s of collection; issue 18), as Python's
    documentation of ``gc.freeze`` recommends before ``fork``.  Nothing is freed differently:
    frozen objects are reachable when they are frozen.
    """

    def __init__(self, jobs: int | None = None, start_method: str | None = None):
        self.jobs = max(1, jobs or default_jobs())
        self.start_method = start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.description = f"local process pool, {self.jobs} worker{'s' * (self.jobs != 1)} ({self.start_method})"

    def run(self, work, items, notify=None):
        notify = notify or (lambda index, message: None)
        remaining = list(range(len(items)))
        while remaining:
            suspects, remaining = yield from self._batch(work, items, remaining, self.jobs, notify)
            for index in suspects:  # rerun in isolation to find the task that kills its worker
                crashed, _ = yield from self._batch(work, items, [index], 1, notify)
                if crashed:
                    yield index, Failed("the worker process died while running this task "
                                        "(a crash, or killed for using too much memory)")

    def _batch(self, work, items, indices, jobs, notify):
        """Run ``indices`` in one pool; return (possibly crashed, not started) if the pool broke."""
        context = mp.get_context(self.start_method)
        messages = context.Queue()
        started = context.Array("l", len(items), lock=False)
        pool = cf.ProcessPoolExecutor(min(jobs, len(indices)), mp_context=context, initializer=_init_worker,
                                      initargs=(messages, started, os.getpid(), threads.policy(), self.jobs,
                                                self.start_method == "fork"))
        pending, futures = list(indices), {}

        def submit(freed=None) -> bool:
            """Hand the next task to the free worker (the one that ran ``freed``, or a new one); False
            if the pool broke (a worker died: the batch ends and the tasks not started are rerun)."""
            if pending:
                busy = {_affinity(items[i]) for i in futures.values()}
                index = _next_task(items, pending, None if freed is None else _affinity(items[freed]), busy)
                try:
                    futures[pool.submit(_run_in_worker, work, index, items[index])] = index
                except BrokenProcessPool:
                    return False
            return True

        finished, clean = set(), False
        frozen = self.start_method == "fork"
        if frozen:  # the workers fork at the first submit (the class docstring says why)
            gc.freeze()
        try:
            broken = not all([submit() for _ in range(min(jobs, len(indices)))])
            while futures and not broken:
                done, _ = cf.wait(futures, timeout=0.1, return_when=cf.FIRST_COMPLETED)
                _drain(messages, notify)
                for future in done:
                    index = futures.pop(future)
                    try:
                        value = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    except BaseException as err:  # noqa: BLE001 - e.g. KeyboardInterrupt raised in the worker only
                        value = Failed(f"the worker stopped: {type(err).__name__}: {err}")
                    finished.add(index)
                    broken = not submit(freed=index) or broken  # before yielding: the worker does not wait
                    yield index, value
            clean = not broken
        finally:
            if not clean:  # interrupted or broken: do not wait for running tasks
                for process in list((getattr(pool, "_processes", None) or {}).values()):  # private, no public way
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            _drain(messages, notify)  # what the workers said last (their queues flush as they exit)
            if frozen:
                gc.unfreeze()
        if not broken:
            return [], []
        unfinished = [index for index in indices if index not in finished]
        if len(indices) == 1:
            return unfinished, []
        return [i for i in unfinished if started[i]], [i for i in unfinished if not started[i]]


def _affinity(item: Any) -> Any:
    return getattr(item, "affinity", None)


def _next_task(items: Sequence[Any], pending: list[int], freed: Any, busy: set) -> int:
    """Remove and return the pending index a free worker runs next: the first one with the affinity
    of the task it just finished (``freed``), else the first whose affinity no other worker is
    running, else the first (items without an ``affinity`` run in order)."""
    for wanted in (lambda a: freed is not None and a == freed, lambda a: a is None or a not in busy, lambda a: True):
        for position, index in enumerate(pending):
            if wanted(_affinity(items[index])):
                return pending.pop(position)
    raise IndexError("no pending task")


def _drain(messages, notify: Notify) -> None:
    while True:
        try:
            index, message = messages.get_nowait()
        except queue.Empty:
            return
        notify(index, message)


def executor_from_name(name: str, jobs: int | None = None) -> Executor:
    """``process`` (default), ``serial``, ``dask[:ADDRESS]``, ``ray[:ADDRESS]`` (a local cluster of
    ``jobs`` workers without an address), or ``module:factory`` with ``factory(jobs) -> Executor``."""
    if name == "process":
        return SerialExecutor() if jobs == 1 else ProcessExecutor(jobs)
    if name == "serial":
        return SerialExecutor()
    engine, sep, address = name.partition(":")
    if engine in ("dask", "ray"):
        from .clusters import cluster_executor

        return cluster_executor(engine, address or None, jobs)
    module_name, attribute = engine, address
    if not sep or not module_name or not attribute:
        raise IbcheckError(f"--executor takes 'process', 'serial', 'dask[:ADDRESS]', 'ray[:ADDRESS]' or "
                           f"MODULE:FACTORY, got {name!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise IbcheckError(f"--executor {name}: cannot load it ({err})") from None
    try:
        executor = factory(jobs)
    except Exception as err:  # noqa: BLE001 - a user's factory: report, do not crash
        raise IbcheckError(f"--executor {name}: the factory failed: {type(err).__name__}: {err}") from None
    if not callable(getattr(executor, "run", None)):
        raise IbcheckError(f"--executor {name}: the factory must return an object with a run(work, items, notify) method")
    return executor
