"""The one error type of ibcheck.

Every failure a user can cause (a malformed formula, an activation without a tempered
Fourier transform, a computation that timed out, a training run that diverged) raises
:class:`IbcheckError` with a one-line message that names the cause.  Internal bugs are
ordinary Python exceptions; the command line turns only ``IbcheckError`` into a clean
one-line error with exit status 2.
"""

from __future__ import annotations


class IbcheckError(Exception):
    """A user-facing error: the message is one line and says what to change."""


class Unsupported(IbcheckError):
    """A derivation that ibcheck cannot carry out in closed form (the reason is the message).

    Callers catch this to fall back to numerics where that is sound.
    """


class TimeLimitExceeded(IbcheckError):
    """A symbolic step exceeded its time budget (sympy can hang on hard inputs).

    ``raised`` counts the instances created in this process, caught ones included: a result
    computed while it grew depends on the machine's load and must not be cached as final
    (see :func:`time_limits_hit`).
    """

    raised = 0

    def __init__(self, *args):
        super().__init__(*args)
        TimeLimitExceeded.raised += 1


def time_limits_hit() -> int:
    """How many time limits have expired in this process so far (compare before and after)."""
    return TimeLimitExceeded.raised
