"""The check protocol: one prediction, one measurement, one tolerance, one verdict.

A :class:`Check` is registered under an id (``transform``, ``kernel-fit-1d``, ``pinning``, ...)
and knows which activations it applies to.  Running it returns a :class:`CheckResult`, the
record every report and every ``ibcheck check --format json`` line is made of:

=============  ==========================================================================
``check``      the id
``activation`` the activation's label
``prediction`` what theory says (number, list or short text)
``measured``   what the measurement gave
``tolerance``  the accepted deviation (number or short text), justified in ``tolerance_note``
``verdict``    ``agrees`` | ``disagrees`` | ``not_applicable`` | ``error``
``details``    a dict of numbers (per-width distances, per-seed values, ...)
=============  ==========================================================================

plus ``reason`` (one line saying why the verdict), ``seed``, ``parameters``, ``runtime_s``
and ``plots`` (declarative :class:`Plot` data that reports render; reports compute nothing).

Topic modules register their checks at import; :data:`CHECK_MODULES` lists them so that
:func:`all_checks` can load the full registry.
"""

from __future__ import annotations

import importlib
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from theory.activations import Activation
from theory.errors import IbcheckError

VERDICTS = ("agrees", "disagrees", "not_applicable", "error")
PROFILES = ("quick", "full")

#: modules whose import registers checks (order = order in reports)
CHECK_MODULES = (
    "numerics.theory_checks",
    "numerics.functional_dimension",
    "numerics.stable_rank",
    "numerics.kernel_regime",
    "numerics.adaptive",
)


@dataclass
class Series:
    """One curve or point set of a plot."""

    label: str
    x: list[float]
    y: list[float]
    style: str = "line"  # line | points | dashed | step


@dataclass
class Plot:
    """Data for one figure; reports draw it with matplotlib."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xscale: str = "linear"
    yscale: str = "linear"
    note: str = ""


@dataclass
class CheckResult:
    """The outcome of one check on one activation (module docstring)."""

    check: str
    activation: str
    prediction: Any
    measured: Any
    tolerance: Any
    verdict: str
    details: dict = field(default_factory=dict)
    reason: str = ""
    tolerance_note: str = ""
    seed: int | None = None
    parameters: dict = field(default_factory=dict)
    runtime_s: float = 0.0
    plots: list[Plot] = field(default_factory=list)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self, plots: bool = True) -> dict:
        data = asdict(self)
        if not plots:
            data.pop("plots")
        return _jsonable(data)


def _jsonable(value):
    """Plain JSON types: numpy scalars/arrays and sympy numbers become floats/lists/strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    try:
        number = float(value)
        return number if math.isfinite(number) else str(number)
    except (TypeError, ValueError):
        return str(value)


@dataclass(frozen=True)
class Context:
    """How to run: the profile (``quick`` or ``full``), the seed, check-specific options
    (``ibcheck check --option KEY=VALUE``, e.g. ``architecture=4-8-8-1``) and a progress callback."""

    profile: str = "quick"
    seed: int = 0
    options: dict = field(default_factory=dict)
    progress: Callable[[str], None] = lambda message: None

    def pick(self, quick, full):
        """The value for this profile."""
        return quick if self.profile == "quick" else full


@dataclass(frozen=True)
class Check:
    """A registered check.

    ``applies(activation)`` returns None when the check applies, else the reason it does not;
    ``run(activation, context)`` returns a :class:`CheckResult`.
    """

    id: str
    title: str
    claim: str
    applies: Callable[[Activation], str | None]
    run: Callable[[Activation, Context], CheckResult]


REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    if check.id in REGISTRY and REGISTRY[check.id] is not check:
        raise ValueError(f"check id {check.id!r} registered twice")
    REGISTRY[check.id] = check
    return check


def all_checks() -> dict[str, Check]:
    """The registry with every topic module loaded."""
    for module in CHECK_MODULES:
        importlib.import_module(module)
    return REGISTRY


def get_check(check_id: str) -> Check:
    checks = all_checks()
    if check_id not in checks:
        raise IbcheckError(f"unknown check {check_id!r}; known: {', '.join(checks)}")
    return checks[check_id]


def verdict_within(measured: float, predicted: float, tolerance: float, relative: bool = False) -> str:
    """``agrees`` if |measured - predicted| <= tolerance (times |predicted| when relative)."""
    if measured is None or predicted is None or not math.isfinite(measured) or not math.isfinite(predicted):
        return "disagrees"
    bound = tolerance * abs(predicted) if relative else tolerance
    return "agrees" if abs(measured - predicted) <= bound else "disagrees"


def verdict_with_reason(criteria: dict[str, bool], setup: str) -> tuple[str, str]:
    """The verdict (``agrees`` iff every criterion holds) and the reason: ``setup``, then each
    failed criterion by name (what the report lists under "what did not agree, and why")."""
    failed = [name for name, holds in criteria.items() if not holds]
    return ("disagrees" if failed else "agrees"), setup + ("; failed: " + "; ".join(failed) if failed else "")


def run_check(check: Check, act: Activation, context: Context) -> CheckResult:
    """Run one check, never raising: inapplicable -> ``not_applicable``; failure -> ``error``."""
    start = time.perf_counter()
    try:
        why_not = check.applies(act)
    except IbcheckError as err:
        why_not = str(err)
    if why_not:
        return CheckResult(check.id, act.label, None, None, None, "not_applicable", reason=why_not,
                           seed=context.seed, runtime_s=time.perf_counter() - start)
    try:
        result = check.run(act, context)
    except IbcheckError as err:
        return CheckResult(check.id, act.label, None, None, None, "error", reason=str(err),
                           seed=context.seed, runtime_s=time.perf_counter() - start)
    except Exception as err:  # a bug in a check must not stop the others; keep the trace
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return CheckResult(check.id, act.label, None, None, None, "error",
                           reason=f"internal error: {last}", seed=context.seed,
                           details={"traceback": traceback.format_exc(limit=8)},
                           runtime_s=time.perf_counter() - start)
    result.runtime_s = time.perf_counter() - start
    result.seed = context.seed if result.seed is None else result.seed
    return result

