"""Synthetic checks for testing the machinery that runs and renders checks (suite, executor,
cache, reports, CLI) without the cost of the real ones.

``registered(...)`` temporarily adds them to ``numerics.checks.REGISTRY``; with ``alone=True``
the registry holds only them (and no check module is imported), so that a default run (every
registered check) stays fast whatever real checks exist.  Process-pool runs see them because
the pool forks (workers inherit the registry).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter

from numerics import checks
from numerics.checks import Check, CheckResult, Option, Plot, Series, judged_result, positive_int
from numerics.verdicts import Criterion, Measurement, control, within

#: how many times each fake check ran in this process (cache tests use the serial executor)
CALLS: Counter = Counter()


def _always(act):
    return None


def _agree(act, context):
    CALLS["fake-agree"] += 1
    plot = Plot("fake decay", "width", "distance", [Series("measured", [10, 100, 1000], [1.0, 0.1, 0.01], "points"),
                                                   Series("theory slope -1", [10, 1000], [1.0, 0.01], "dashed")],
                xscale="log", yscale="log", note="synthetic data")
    ratio = Measurement.mean([1.03, 1.05, 1.04, 1.035, 1.045])
    return judged_result("fake-agree", act, [Criterion("ratio", 1.0, ratio, within(1.0, 0.1), "synthetic")],
                         control("ratio of a wrong theory", 2.0, ratio, within(2.0, 0.2)),
                         setup=f"synthetic, width {context.option('width')}",
                         parameters={"width": context.option("width"), "profile": context.profile},
                         details={"per_seed": [1.03, 1.05, 1.04, 1.035, 1.045], "ratio": 1.04}, plots=[plot])


def _disagree(act, context):
    CALLS["fake-disagree"] += 1
    slope = Measurement.exact(-1.25)
    return judged_result("fake-disagree", act, [Criterion("slope", -2.0, slope, within(-2.0, 0.2))],
                         control("slope of a wrong theory", -1.0, slope, within(-1.0, 0.2)), setup="synthetic")


def _raise(act, context):
    CALLS["fake-raise"] += 1
    raise RuntimeError("boom in a fake check")


def _slow(act, context):
    CALLS["fake-slow"] += 1
    context.progress("halfway")
    time.sleep(0.4)
    return CheckResult("fake-slow", act.label, prediction=0, measured=0, tolerance=0, verdict="agrees",
                       reason="slept", details={"pid": os.getpid()})


def _only_relu(act):
    return None if act.name == "relu" else "only for relu"


def _relu_only(act, context):
    return CheckResult("fake-relu-only", act.label, prediction=1, measured=1, tolerance=0, verdict="agrees",
                       reason="relu is relu")


def _bad_plot(act, context):
    broken = Plot("mismatched", "x", "y", [Series("x and y differ in length", [1, 2, 3], [1, 2])])
    return CheckResult("fake-bad-plot", act.label, prediction=None, measured=None, tolerance=None,
                       verdict="agrees", reason="plot data is broken on purpose", plots=[broken])


def _interrupt(act, context):
    raise KeyboardInterrupt


def _crash(act, context):
    os._exit(3)  # a worker process dying (segfault, out of memory)


AGREE = Check("fake-agree", "Fake agreeing check", "F1", _always, _agree,
              {"width": Option("synthetic width", positive_int, 7)})
DISAGREE = Check("fake-disagree", "Fake disagreeing check", "F2", _always, _disagree)
RAISE = Check("fake-raise", "Fake check that raises", "F3", _always, _raise)
SLOW = Check("fake-slow", "Fake slow check", "F4", _always, _slow)
RELU_ONLY = Check("fake-relu-only", "Fake check for relu only", "F5", _only_relu, _relu_only)
BAD_PLOT = Check("fake-bad-plot", "Fake check with broken plot data", "F6", _always, _bad_plot)
INTERRUPT = Check("fake-interrupt", "Fake check interrupted by the user", "F7", _always, _interrupt)
CRASH = Check("fake-crash", "Fake check whose process dies", "F8", _always, _crash)


@contextlib.contextmanager
def registered(*fakes: Check, alone: bool = False):
    """Add ``fakes`` to the registry for the duration (``alone``: hide every other check)."""
    # load the real checks first: modules imported inside the context would register into the
    # registry restored below and never again (a later all_checks() would find it empty)
    saved_registry, saved_modules = dict(checks.all_checks()), checks.CHECK_MODULES
    if alone:
        checks.REGISTRY.clear()
        checks.CHECK_MODULES = ()
    for fake in fakes:
        checks.REGISTRY[fake.id] = fake
    CALLS.clear()
    try:
        yield
    finally:
        checks.REGISTRY.clear()
        checks.REGISTRY.update(saved_registry)
        checks.CHECK_MODULES = saved_modules
