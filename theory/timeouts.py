"""CPU-time limits for symbolic steps, in any thread.

sympy can run for minutes (or forever) on hard integrals, limits and simplifications.
:func:`time_limit` bounds one step: on expiry it raises :class:`TimeLimitExceeded`, which the
callers turn into an unevaluated result with a reason, or into a numerical fallback.

**What is limited: the CPU time of the calling thread** (``time.pthread_getcpuclockid``), not
wall time, so a limit does not depend on how loaded the machine is: the same step is stopped
after the same amount of work on an idle laptop and on a machine shared by eight jobs.  (Wall
time would stop a step early under load and make verdicts depend on the neighbours.)

**How: a watchdog thread**, one per process, started on first use.  It sleeps until the
earliest a limit can expire (a thread's CPU clock advances at most as fast as the wall clock),
reads the CPU clock of each limited thread, and raises :class:`TimeLimitExceeded` in a thread
whose limit has run out by ``PyThreadState_SetAsyncExc`` (CPython's way to raise in another
thread; the exception arrives at the thread's next Python bytecode, and sympy and mpmath are
Python).  This works in the main thread, in worker threads (a Dask worker runs tasks in a
thread pool, where ``SIGALRM`` cannot reach them) and in worker processes alike.  Where either
piece is missing (a platform without per-thread CPU clocks: wall time is used instead; a Python
without ``PyThreadState_SetAsyncExc``: no limit at all) a :class:`RuntimeWarning` says so once
per process; a limit is never silently off.

Nested limits: each one fires on its own deadline with its own message, the earliest first.
Library code sometimes catches exceptions broadly and carries on: while the body of an expired
limit is still running, the expiry is raised again every :data:`REFIRE_SECONDS` of CPU time.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass

from .errors import TimeLimitExceeded

#: CPU seconds between repeated expiries while an expired body is still running
REFIRE_SECONDS = 0.05
#: the watchdog's shortest sleep (wall seconds): bounds its own CPU use
MIN_SLEEP = 0.002


def _async_raise():
    """``PyThreadState_SetAsyncExc(thread_id, exception_class)`` or None off CPython."""
    api = getattr(ctypes, "pythonapi", None)
    if api is None or not hasattr(api, "PyThreadState_SetAsyncExc"):
        return None
    function = api.PyThreadState_SetAsyncExc
    function.argtypes = (ctypes.c_ulong, ctypes.py_object)
    function.restype = ctypes.c_int
    return function


_SET_ASYNC_EXC = _async_raise()


def _thread_clock():
    """A function returning the calling thread's clock reader, and whether it is CPU time."""
    if hasattr(time, "pthread_getcpuclockid"):
        def reader():
            clock = time.pthread_getcpuclockid(threading.get_ident())
            return lambda: time.clock_gettime(clock)
        return reader, True
    return (lambda: time.monotonic), False


_CLOCK_OF_THIS_THREAD, CPU_TIME = _thread_clock()


@dataclass
class _Limit:
    thread: int  # threading.get_ident() of the limited thread
    clock: object  # reads that thread's CPU clock
    deadline: float
    message: str
    expiry: type | None = None  # made on the first expiry (PyThreadState_SetAsyncExc takes a class)
    fired: bool = False


class _Watchdog:
    """The per-process thread that raises expiries in limited threads (module docstring)."""

    def __init__(self):
        self.wake = threading.Condition()
        self.limits: dict[int, _Limit] = {}
        self.thread: threading.Thread | None = None
        self.wakes_at = math.inf  # monotonic time the watchdog sleeps until

    def add(self, key: int, limit: _Limit, seconds: float) -> None:
        with self.wake:
            self.limits[key] = limit
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._watch, name="ibcheck-time-limits", daemon=True)
                self.thread.start()
            if time.monotonic() + seconds < self.wakes_at:  # CPU time cannot run out sooner than this
                self.wake.notify()

    def remove(self, key: int) -> None:
        with self.wake:
            limit = self.limits.pop(key, None)
            if limit is not None and limit.fired and not any(
                    other.thread == limit.thread and other.fired for other in self.limits.values()):
                _SET_ASYNC_EXC(limit.thread, ctypes.py_object())  # NULL clears an expiry not yet delivered: the body is over

    def _watch(self) -> None:
        with self.wake:
            while True:
                sleep = None
                expired: dict[int, _Limit] = {}
                for limit in self.limits.values():
                    try:
                        left = limit.deadline - limit.clock()
                    except OSError:  # the thread ended without leaving its limit (cannot happen in a with)
                        continue
                    if left <= 0:
                        if limit.thread not in expired or limit.deadline < expired[limit.thread].deadline:
                            expired[limit.thread] = limit
                        left = REFIRE_SECONDS
                    sleep = left if sleep is None else min(sleep, left)
                for limit in expired.values():
                    limit.fired = True
                    limit.deadline = limit.clock() + REFIRE_SECONDS
                    limit.expiry = limit.expiry or _expiry_class(limit.message)
                    _SET_ASYNC_EXC(limit.thread, limit.expiry)
                sleep = None if sleep is None else max(sleep, MIN_SLEEP)
                self.wakes_at = math.inf if sleep is None else time.monotonic() + sleep
                self.wake.wait(sleep)


_WATCHDOG = _Watchdog()
_KEYS = itertools.count()
_WARNED: set[str] = set()


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread (its CPU clock restarts): no limits, no watchdog
    thread, and a fresh lock (the parent's watchdog may have held it at the fork)."""
    _WATCHDOG.__init__()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _expiry_class(message: str) -> type:
    """A :class:`TimeLimitExceeded` subclass whose no-argument instances carry ``message``."""
    class Expired(TimeLimitExceeded):
        def __init__(self, *args):
            super().__init__(*(args or (message,)))

        def __reduce__(self):  # travels between processes as the plain error type
            return TimeLimitExceeded, self.args

    Expired.__name__ = Expired.__qualname__ = "TimeLimitExceeded"
    Expired.__module__ = TimeLimitExceeded.__module__
    return Expired


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Run the body under a limit of ``seconds`` of this thread's CPU time (``None``: no limit).

    Raises :class:`TimeLimitExceeded` naming ``what`` when the limit expires.
    """
    if seconds is None:
        yield
        return
    if _SET_ASYNC_EXC is None:
        _warn_once("async", f"time limits are off on {sys.implementation.name}: it cannot raise in a running "
                            f"thread (PyThreadState_SetAsyncExc); {what} runs unbounded")
        yield
        return
    if not CPU_TIME:
        _warn_once("clock", "no per-thread CPU clock on this platform: time limits count wall time")
    message = f"{what} took longer than {seconds:g} s{' of CPU time' if CPU_TIME else ''} and was stopped"
    clock = _CLOCK_OF_THIS_THREAD()
    limit = _Limit(threading.get_ident(), clock, clock() + seconds, message)
    key = next(_KEYS)
    try:  # registered inside the try: an outer limit's expiry may arrive at any bytecode
        _WATCHDOG.add(key, limit, seconds)
        yield
    finally:
        while True:  # an outer expiry delivered while leaving: the body is over, leave anyway
            try:
                _WATCHDOG.remove(key)
                break
            except TimeLimitExceeded:
                continue
