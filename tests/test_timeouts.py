"""Time limits on symbolic steps: a hang becomes an error message, and limits nest."""

import time

import pytest

from theory.errors import TimeLimitExceeded
from theory.timeouts import time_limit


def test_busy_loop_is_stopped_with_a_message():
    start = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="spinning took longer than 0.2 s"):
        with time_limit(0.2, "spinning"):
            while True:
                pass
    assert time.monotonic() - start < 2.0


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

    start = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        with time_limit(0.2, "stubborn"):
            stubborn()
    assert time.monotonic() - start < 2.0
