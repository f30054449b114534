"""Time limits on symbolic steps: a hang becomes an error message, and limits nest."""

import concurrent.futures
import threading
import time

import pytest

from theory import timeouts
from theory.errors import TimeLimitExceeded
from theory.timeouts import time_limit


def test_busy_loop_is_stopped_with_a_message():
    start = time.thread_time()  # CPU time: what the limit counts, independent of the load
    with pytest.raises(TimeLimitExceeded, match="spinning took longer than 0.2 s"):
        with time_limit(0.2, "spinning"):
            while True:
                pass
    assert time.thread_time() - start < 2.0


def test_nested_limits_keep_the_outer_deadline():
    with pytest.raises(TimeLimitExceeded, match="outer"):
        with time_limit(0.3, "outer"):
            with time_limit(5.0, "inner"):
                pass
            while True:
                pass


def test_no_limit_when_none():
    with time_limit(None, "anything"):
        total = sum(range(1000))
    assert total == 499500


def test_expiry_swallowed_by_broad_except_fires_again():
    """sympy sometimes wraps a step in `except Exception` and carries on with the next step; the
    limit must still stop the whole body (the expiry re-fires until the body has stopped)."""
    def spin():
        while True:
            pass

    def stubborn():
        for _ in range(3):
            try:
                spin()
            except Exception:  # swallows an expiry, as some library code does, then goes on
                pass
        spin()

    start = time.thread_time()  # CPU time: what the limit counts, independent of the load
    with pytest.raises(TimeLimitExceeded):
        with time_limit(0.2, "stubborn"):
            stubborn()
    assert time.thread_time() - start < 2.0


def _spin_under_limit(seconds: float, what: str) -> str:
    try:
        with time_limit(seconds, what):
            while True:
                pass
    except TimeLimitExceeded as err:
        return str(err)


def test_limit_fires_in_a_worker_thread():
    """Off the main thread (where SIGALRM never reaches: Dask runs tasks in a thread pool) the limit
    still stops the body, and only in the thread it was set in."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("message", _spin_under_limit(0.2, "threaded")))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert outcome["message"].startswith("threaded took longer than 0.2 s")


def test_limits_in_two_threads_fire_independently():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        messages = list(pool.map(_spin_under_limit, [0.1, 0.3], ["first", "second"]))
    assert messages[0].startswith("first took longer") and messages[1].startswith("second took longer")


def test_the_limit_counts_cpu_time_not_waiting():
    """A body that waits (no CPU) outlives a shorter limit: limits count the thread's CPU time, so
    they do not depend on the machine's load (skipped where only wall time is available)."""
    if not timeouts.CPU_TIME:
        pytest.skip("no per-thread CPU clock on this platform")
    with time_limit(0.05, "waiting"):
        time.sleep(0.3)  # ~0 CPU seconds: far below the limit however loaded the machine is


def test_an_expired_inner_limit_does_not_disturb_the_outer_one():
    with time_limit(30.0, "outer"):
        assert _spin_under_limit(0.1, "inner").startswith("inner took longer")
        total = sum(range(1000))  # the outer body goes on normally
    assert total == 499500
