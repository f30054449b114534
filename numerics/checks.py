"""The check protocol: a claim as criteria, judged by one engine, recorded as a :class:`CheckResult`.

A :class:`Check` is registered under an id (``transform``, ``kernel-fit-1d``, ``pinning``, ...),
knows which activations it applies to and which setup options it reads (:class:`Option`).
Running it returns a :class:`CheckResult`, the record every report and every
``ibcheck check --format json`` line is made of:

=================== =====================================================================
``check``           the id
``activation``      the activation's label
``verdict``         ``agrees`` | ``disagrees`` | ``inconclusive`` | ``not_applicable`` | ``error``
``inconclusive_kind`` why inconclusive: ``straddles`` | ``too_few_seeds`` | ``not_converged`` |
                    ``premise`` | ``no_power`` (None otherwise)
``criteria``        the claim's :class:`~numerics.verdicts.Criterion` list (judged or reported)
``control``         the negative control (a wrong prediction of the same kind) or None
``premises``        the measured hypotheses (:class:`~numerics.verdicts.Premise`)
``prediction``      headline: the first judged criterion's prediction
``measured``        headline: its estimate
``tolerance``       headline: its tolerance
``details``         a dict of numbers (per-width distances, per-seed values, ...)
=================== =====================================================================

plus ``reason`` (one line saying why the verdict), ``seed``, ``parameters`` (every option value
used), ``runtime_s`` and ``plots`` (declarative :class:`Plot` data that reports render; reports
compute nothing).  Checks build results with :func:`judged_result`; the verdict always comes
from :func:`numerics.verdicts.decide`, also when a record is read back from the cache.

Topic modules register their checks at import; :data:`CHECK_MODULES` lists them so that
:func:`all_checks` can load the full registry.
"""

from __future__ import annotations

import importlib
import math
import time
import traceback
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

from theory.activations import Activation
from theory.errors import IbcheckError

from .threads import single_threaded
from .verdicts import INCONCLUSIVE_KINDS, OUTCOMES, Criterion, Measurement, Premise, decide, rejected

VERDICTS = OUTCOMES
PROFILES = ("quick", "full")

#: modules whose import registers checks (order = order in reports)
CHECK_MODULES = (
    "numerics.theory_checks",
    "numerics.functional_dimension",
    "numerics.stable_rank",
    "numerics.kernel_regime",
    "numerics.activation_specificity",
    "numerics.design_round_trip",
    "numerics.adaptive",
)


#: what a prediction drawn in a plot is: the one a judged criterion uses, or one only reported
JUDGED, REPORTED = "judged", "reported, not judged"


@dataclass
class Series:
    """One curve or point set of a plot; ``low``/``high`` (optional, same length as ``y``) are the
    ends of a 95% interval at each point (None where the interval is unbounded, e.g. one seed):
    drawn as error bars on points, as a band on lines.

    Styles: ``line | points | dashed | step`` for measurements and references; ``prediction`` (a
    curve or constant over the whole range) or ``prediction-points`` (values at the judged points
    only) for the prediction a judged criterion uses (label it with :data:`JUDGED`); ``reported`` for one
    that is only reported (label it with :data:`REPORTED`; drawn grey and dotted, so it never
    looks like the claim)."""

    label: str
    x: list[float]
    y: list[float]
    style: str = "line"  # line | points | dashed | step | prediction | prediction-points | reported
    low: list[float] | None = None
    high: list[float] | None = None


def _bound(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def measured_series(label: str, x, measurements: list[Measurement], style: str = "points") -> Series:
    """Estimates with the 95% intervals the verdict engine judges (:class:`Measurement`), one per
    ``x``: the plot shows the same interval as the criterion, not a second computation."""
    return Series(label, [float(v) for v in x], [m.estimate for m in measurements], style,
                  low=[_bound(m.interval[0]) for m in measurements],
                  high=[_bound(m.interval[1]) for m in measurements])


def replicate_series(label: str, x, replicates, style: str = "line") -> Series:
    r"""The mean over replicates (rows of ``replicates``, one column per ``x``) with the Student-t
    95% interval of :meth:`Measurement.mean` at every ``x``: a criterion judging the mean at some
    ``x`` has exactly the interval drawn there."""
    rows = [[float(v) for v in row] for row in replicates]
    return measured_series(label, x,
                           [Measurement.mean(column) for column in zip(*rows)], style)


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


def criteria_plot(title: str, ylabel: str, criteria: list[Criterion]) -> Plot:
    """The judged criteria of one kind side by side (x = their index, named in the caption): each
    measurement with the 95% interval the verdict uses, and the finite ends of its accepted region
    (the judged prediction) as markers."""
    judged = [c for c in criteria if c.judged]
    index = list(range(len(judged)))
    ends = [(k, end) for k, c in zip(index, judged) for end in c.tolerance.accepted if math.isfinite(end)]
    return Plot(title, "criterion", ylabel,
                [measured_series("measured", index, [c.measurement for c in judged]),
                 Series(f"accepted region's ends ({JUDGED})", [k for k, _ in ends], [e for _, e in ends],
                        "prediction-points")],
                note="; ".join(f"{k}: {c.name} ({c.tolerance.text})" for k, c in zip(index, judged))
                + "; error bars: the 95% intervals the verdict uses")


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
    inconclusive_kind: str | None = None
    criteria: list[Criterion] = field(default_factory=list)
    control: Criterion | None = None
    premises: list[Premise] = field(default_factory=list)
    setup: str = ""  # one line: the run's sizes and seeds (the reason starts with it)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if (self.verdict == "inconclusive") != (self.inconclusive_kind is not None) or \
                (self.inconclusive_kind is not None and self.inconclusive_kind not in INCONCLUSIVE_KINDS):
            raise ValueError(f"inconclusive_kind {self.inconclusive_kind!r} does not fit verdict {self.verdict!r}")
        if self.criteria and self.verdict in ("agrees", "disagrees", "inconclusive"):
            decision = decide(self.criteria, self.control, self.premises, self.setup)
            if (decision.verdict, decision.kind) != (self.verdict, self.inconclusive_kind):
                raise ValueError(f"verdict {self.verdict!r} ({self.inconclusive_kind}) is not what the criteria "
                                 f"give ({decision.verdict!r}, {decision.kind}); build results with judged_result")

    def to_dict(self, plots: bool = True) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("plots", "criteria", "control", "premises")}
        data = _jsonable(data)
        data["criteria"] = [_jsonable(c.to_dict()) for c in self.criteria]
        data["control"] = None if self.control is None else \
            _jsonable(dict(self.control.to_dict(), rejected=rejected(self.control)))
        data["premises"] = [_jsonable(p.to_dict()) for p in self.premises]
        if plots:
            data["plots"] = _jsonable([asdict(p) for p in self.plots])
        return data

    def _repr_html_(self) -> str:  # Jupyter: the verdict, its criteria table and the plots
        from .report.html_report import result_fragment

        return result_fragment(self)

    def _repr_latex_(self) -> str:  # Jupyter (LaTeX front ends): the verdict and the criteria as a table
        from .report.formatting import CRITERIA_HEADER, criteria_rows, cut, latex_table, latex_text, verdict_label

        head = f"$$\\text{{{latex_text(f'{self.check} on {self.activation}: {verdict_label(self)}')}}}$$"
        reason = f"$$\\text{{{latex_text(cut(self.reason, 160))}}}$$"
        return head + reason + (latex_table(CRITERIA_HEADER, criteria_rows(self)) if self.criteria else "")

    @classmethod
    def from_dict(cls, record: dict) -> "CheckResult":
        """A result from its :meth:`to_dict` form, *re-judged*: criterion outcomes, the verdict
        and the reason are recomputed from the stored criteria, control and premises (a stored
        verdict is never trusted).  A malformed record raises :class:`IbcheckError`."""
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in record.items() if k in names}
        try:
            data["plots"] = [Plot(**{**p, "series": [Series(**s) for s in p.get("series", [])]})
                             for p in data.get("plots") or []]
            data["criteria"] = [Criterion.from_dict(c) for c in data.get("criteria") or []]
            data["control"] = None if not data.get("control") else Criterion.from_dict(
                dict(data["control"], judged=False))
            data["premises"] = [Premise.from_dict(p) for p in data.get("premises") or []]
            if data["criteria"] and data.get("verdict") in ("agrees", "disagrees", "inconclusive"):
                decision = decide(data["criteria"], data["control"], data["premises"], str(data.get("setup", "")))
                data.update(verdict=decision.verdict, inconclusive_kind=decision.kind, reason=decision.reason)
            return cls(**data)
        except (TypeError, ValueError, AttributeError) as err:
            raise IbcheckError(f"malformed check record: {err}") from None


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
class Option:
    """A setup option a check reads (``ibcheck check ACT --option KEY=VALUE``).

    ``parse`` turns the typed string into a value (raising ``ValueError`` on bad input);
    ``quick``/``full`` are the defaults per profile (``full`` defaults to ``quick``)."""

    help: str
    parse: Callable[[str], Any] = str
    quick: Any = None
    full: Any = None

    def default(self, profile: str) -> Any:
        return self.full if profile == "full" and self.full is not None else self.quick


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a finite positive number")
    return value


@dataclass(frozen=True)
class Context:
    """How to run: the profile (``quick`` or ``full``), the seed, the setup options given by the
    user (``--option KEY=VALUE``, strings), a progress callback, and ``until_decided``: a budget
    of seeds for adding replicates while the outcome is undecided (0: off).

    Checks read options through :meth:`option`, which parses the value (or takes the profile's
    default) as the check's :class:`Option` declares; :func:`run_check` binds ``declared``."""

    profile: str = "quick"
    seed: int = 0
    options: dict = field(default_factory=dict)
    progress: Callable[[str], None] = lambda message: None
    until_decided: int = 0
    declared: dict = field(default_factory=dict)

    def pick(self, quick, full):
        """The value for this profile."""
        return quick if self.profile == "quick" else full

    def option(self, key: str) -> Any:
        """The value of a declared option: the user's, parsed, or the profile's default."""
        if key not in self.declared:
            raise KeyError(f"option {key!r} is not declared by this check")  # a bug in the check, not user input
        spec = self.declared[key]
        if key not in self.options or self.options[key] is None:
            return spec.default(self.profile)
        return parsed_option(key, spec, str(self.options[key]))

    def used(self) -> dict:
        """Every declared option with the value this run uses (recorded in the result)."""
        return {key: self.option(key) for key in self.declared}


@dataclass(frozen=True)
class Check:
    """A registered check.

    ``applies(activation)`` returns None when the check applies, else the reason it does not;
    ``run(activation, context)`` returns a :class:`CheckResult` (built with :func:`judged_result`);
    ``options`` declares every setup option the check reads (name -> :class:`Option`).  A check
    that reads an option ``seeds`` can be run with ``--until-decided``.
    """

    id: str
    title: str
    claim: str
    applies: Callable[[Activation], str | None]
    run: Callable[[Activation, Context], CheckResult]
    options: dict[str, Option] = field(default_factory=dict)


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


def unknown_options(options: dict, checks: list[Check]) -> list[str]:
    """The option keys that none of ``checks`` declares."""
    known = {key for check in checks for key in check.options}
    return sorted(key for key in options if key not in known)


def parsed_option(key: str, spec: Option, text: str) -> Any:
    """``spec.parse(text)``, a bad value being a one-line :class:`IbcheckError` that names the option."""
    try:
        return spec.parse(text)
    except (TypeError, ValueError, ArithmeticError) as err:
        raise IbcheckError(f"--option {key}={text}: {err} ({spec.help})") from None


def check_options(options: dict, checks: list[Check]) -> None:
    """Raise :class:`IbcheckError` (one line) for an option no selected check reads (naming the valid
    keys) or a value a check that reads it cannot parse: before any work starts."""
    unknown = unknown_options(options, checks)
    if unknown:
        valid = sorted({key for check in checks for key in check.options})
        raise IbcheckError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
                           f"check{'s' if len(checks) > 1 else ''} {', '.join(c.id for c in checks)}; valid keys: "
                           + (", ".join(valid) if valid else "none (these checks take no options)"))
    for check in checks:
        for key, spec in check.options.items():
            if options.get(key) is not None:
                parsed_option(key, spec, str(options[key]))


def judged_result(check_id: str, act: Activation, criteria: list[Criterion], control: Criterion | None = None,
                  premises: list[Premise] = (), *, setup: str = "", details: dict | None = None,
                  plots: list[Plot] | None = None, parameters: dict | None = None,
                  tolerance_note: str = "") -> CheckResult:
    """A :class:`CheckResult` whose verdict, kind and reason come from
    :func:`numerics.verdicts.decide`; the headline prediction/measured/tolerance are the first
    judged criterion's."""
    decision = decide(criteria, control, list(premises), setup)
    head = next((c for c in criteria if c.judged), None)
    return CheckResult(
        check_id, act.label,
        prediction=None if head is None else head.prediction,
        measured=None if head is None else head.measurement.estimate,
        tolerance=None if head is None else head.tolerance.text,
        verdict=decision.verdict, inconclusive_kind=decision.kind, reason=decision.reason,
        tolerance_note=tolerance_note or ("" if head is None else head.note),
        details=details or {}, parameters=parameters or {}, plots=plots or [],
        criteria=list(criteria), control=control, premises=list(premises), setup=setup)


def _bare(check: Check, act: Activation, context: Context, verdict: str, reason: str, start: float,
          details: dict | None = None) -> CheckResult:
    return CheckResult(check.id, act.label, None, None, None, verdict, reason=reason, seed=context.seed,
                       details=details or {}, runtime_s=time.perf_counter() - start)


#: inconclusive kinds that more seeds can settle
SETTLED_BY_SEEDS = ("straddles", "too_few_seeds")


@single_threaded  # small tensors: one thread; large linear algebra asks for the cores (numerics.threads)
def run_check(check: Check, act: Activation, context: Context) -> CheckResult:
    """Run one check, never raising: inapplicable -> ``not_applicable``; failure -> ``error``;
    an option the check does not declare -> ``error`` naming the valid keys.

    With ``context.until_decided = B > 0`` and a check that reads ``seeds``, an outcome that more
    seeds can settle (``straddles``, ``too_few_seeds``) is re-run with twice the seeds while the
    total stays within B; every round is recorded in ``parameters["until_decided"]``."""
    start = time.perf_counter()
    context = replace(context, declared=dict(check.options))
    try:
        check_options(context.options, [check])
        why_not = check.applies(act)
    except IbcheckError as err:
        return _bare(check, act, context, "error" if "option" in str(err) else "not_applicable", str(err), start)
    if why_not:
        return _bare(check, act, context, "not_applicable", why_not, start)
    try:
        result = check.run(act, context)
        rounds = []
        while (context.until_decided and "seeds" in check.options and result.verdict == "inconclusive"
               and result.inconclusive_kind in SETTLED_BY_SEEDS):
            seeds = 2 * context.option("seeds")
            if sum(rounds) + context.option("seeds") + seeds > context.until_decided:
                break
            rounds.append(context.option("seeds"))
            context = replace(context, options={**context.options, "seeds": str(seeds)})
            context.progress(f"undecided ({result.inconclusive_kind}): {seeds} seeds")
            result = check.run(act, context)
        used = context.used()
    except IbcheckError as err:
        return _bare(check, act, context, "error", str(err), start)
    except Exception as err:  # a bug in a check must not stop the others; keep the trace
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return _bare(check, act, context, "error", f"internal error: {last}", start,
                     {"traceback": traceback.format_exc(limit=8)})
    result.parameters = {**result.parameters, "options": used}
    if rounds:
        result.parameters["until_decided"] = {"budget": context.until_decided,
                                              "seeds_per_round": rounds + [context.option("seeds")]}
    result.runtime_s = time.perf_counter() - start
    result.seed = context.seed if result.seed is None else result.seed
    return result
