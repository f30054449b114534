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
    """A symbolic step exceeded its time budget (sympy can hang on hard inputs)."""
