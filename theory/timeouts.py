"""Wall-clock limits for symbolic steps.

sympy can run for minutes (or forever) on hard integrals, limits and simplifications.
:func:`time_limit` bounds one step: on expiry it raises :class:`TimeLimitExceeded`, which the
callers turn into an unevaluated result with a reason, or into a numerical fallback.

The limit uses ``SIGALRM`` and therefore works in the main thread of a process (the command
line, a pytest run, each worker of a process pool).  Elsewhere (another thread, a platform
without ``SIGALRM``) the step runs unbounded; nested limits keep the innermost deadline and
restore the outer one afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

from .errors import TimeLimitExceeded

def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Run the body under a wall-clock limit of ``seconds`` (``None``: no limit).

    Raises :class:`TimeLimitExceeded` naming ``what`` when the limit expires.
    """
    if seconds is None or not _can_alarm():
        yield
        return
    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    outer_handler = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    budget = seconds if outer_remaining == 0 else min(seconds, outer_remaining)
    inner_is_binding = outer_remaining == 0 or seconds < outer_remaining

    def _expired(signum, frame):  # noqa: ARG001 - signal handler signature
        if inner_is_binding:
            # sympy sometimes catches exceptions broadly: re-arm so that a swallowed expiry
            # fires again until the body has really stopped (the finally clause disarms it)
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            raise TimeLimitExceeded(f"{what} took longer than {seconds:g} s and was stopped")
        if callable(outer_handler):
            outer_handler(signum, frame)

    signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_remaining:
            left = outer_remaining - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))

