"""The verdict engine: criteria with intervals, a negative control and premises -> one outcome.

Every check states its claim as named :class:`Criterion` objects (a prediction, a measured
estimate with an uncertainty interval, and the region of estimates the claim accepts), one
:class:`Criterion` used as a *control* (a deliberately wrong prediction of the same kind, judged on
the same measurement) and the :class:`Premise` objects of the result it tests.  :func:`decide` is
the only place where these become an outcome; checks never set a verdict by hand.

A criterion's outcome compares its interval :math:`[\\ell, h]` with the accepted region
:math:`[a, b]`:

.. math::

    \\text{pass} \\iff a \\le \\ell \\text{ and } h \\le b, \\qquad
    \\text{fail} \\iff h < a \\text{ or } \\ell > b, \\qquad \\text{undecided otherwise;}

a non-finite estimate or interval fails (a NaN never passes).  The claim's outcome, in order:

1. a premise with ``consequence="not_applicable"`` fails -> ``not_applicable`` (the theorem
   says nothing here);
2. any other premise fails -> ``inconclusive`` (kind ``premise``);
3. a judged criterion fails -> ``disagrees``;
4. a judged criterion is undecided -> ``inconclusive`` with that criterion's kind
   (``straddles``, ``too_few_seeds``, ``not_converged``);
5. the control was not rejected (or there is none) -> ``inconclusive`` (kind ``no_power``):
   a measurement that cannot tell the claim from a wrong one is no evidence for it;
6. otherwise ``agrees``.

Intervals come from repetition: :meth:`Measurement.mean` (Student t over seeds or replicates),
:meth:`Measurement.proportion` (Wilson score interval for a fraction of seeds) and
:meth:`Measurement.exact` (a deterministic value, e.g. an exact rank or a 30-digit quadrature,
whose interval is the value itself).  See ``docs/reports.md`` for a worked example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from theory.errors import IbcheckError

#: the five outcomes of a check
OUTCOMES = ("agrees", "disagrees", "inconclusive", "not_applicable", "error")
#: why an outcome is ``inconclusive``
INCONCLUSIVE_KINDS = ("straddles", "too_few_seeds", "not_converged", "premise", "no_power")
#: a criterion's outcome
CRITERION_OUTCOMES = ("pass", "fail", "undecided")
#: confidence level of every interval the engine builds
LEVEL = 0.95

INF = math.inf


def _finite(*values: float) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _g(value: Any) -> str:
    """A number in 4 significant digits (text as it is)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _span(interval: tuple[float, float]) -> str:
    low, high = interval
    return _g(low) if low == high else f"[{_g(low)}, {_g(high)}]"


@dataclass(frozen=True)
class Measurement:
    """An estimate with its 95% interval and the number of replicates behind it.

    ``values`` keeps the per-seed (per-replicate) numbers for the record."""

    estimate: float
    interval: tuple[float, float]
    n: int = 1
    method: str = "exact"
    values: tuple[float, ...] = ()

    @classmethod
    def exact(cls, value: float) -> "Measurement":
        """A deterministic value (exact arithmetic or quadrature far below the tolerance)."""
        value = float(value)
        return cls(value, (value, value), 1, "exact", (value,))

    @classmethod
    def mean(cls, values) -> "Measurement":
        r"""The mean of replicates with the Student-t interval
        :math:`\bar x \pm t_{0.975, n-1}\, s/\sqrt n`; one replicate gives an unbounded interval
        (no estimate of the spread), any non-finite replicate a NaN estimate.  The quantile is
        ``scipy.special.stdtrit`` (what ``scipy.stats.t.ppf`` calls, without importing
        ``scipy.stats``: 0.3 s per worker process)."""
        from scipy.special import stdtrit

        values = tuple(float(v) for v in values)
        n = len(values)
        if n == 0:
            raise IbcheckError("a mean needs at least one value")
        if not _finite(*values):
            return cls(math.nan, (math.nan, math.nan), n, "t", values)
        mean = math.fsum(values) / n
        if n == 1:
            return cls(mean, (-INF, INF), 1, "t", values)
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        half = float(stdtrit(n - 1, 0.5 + LEVEL / 2)) * sd / math.sqrt(n)
        return cls(mean, (mean - half, mean + half), n, "t", values)

    @classmethod
    def proportion(cls, successes: int, n: int) -> "Measurement":
        r"""A fraction :math:`k/n` with the Wilson score interval
        :math:`\frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}`
        (Wilson 1927; good coverage already at small n, unlike the Wald interval)."""
        if n <= 0 or not 0 <= successes <= n:
            raise IbcheckError(f"a proportion needs 0 <= k <= n and n > 0, got k = {successes}, n = {n}")
        from scipy.special import ndtri

        z = float(ndtri(0.5 + LEVEL / 2))  # the standard normal quantile, as scipy.stats.norm.ppf
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return cls(p, (max(0.0, centre - half), min(1.0, centre + half)), n, "wilson", (float(successes),))


# ---------------------------------------------------------------- accepted regions (tolerances)

@dataclass(frozen=True)
class Tolerance:
    """The region of estimates a prediction accepts, and how it reads (``± 0.02``, ``<= 0.05``)."""

    accepted: tuple[float, float]
    text: str


def within(prediction: float, tolerance: float) -> Tolerance:
    """:math:`|e - p| \\le \\tau`."""
    return Tolerance((prediction - tolerance, prediction + tolerance), f"± {_g(tolerance)}")


def within_relative(prediction: float, tolerance: float) -> Tolerance:
    """:math:`|e - p| \\le \\tau |p|`."""
    bound = tolerance * abs(prediction)
    return Tolerance((prediction - bound, prediction + bound), f"± {_g(100 * tolerance)}% of the prediction")


def at_most(bound: float) -> Tolerance:
    """:math:`e \\le b`."""
    return Tolerance((-INF, bound), f"<= {_g(bound)}")


def at_least(bound: float) -> Tolerance:
    """:math:`e \\ge b`."""
    return Tolerance((bound, INF), f">= {_g(bound)}")


def between(low: float, high: float) -> Tolerance:
    """:math:`\\ell \\le e \\le h`."""
    return Tolerance((low, high), f"in [{_g(low)}, {_g(high)}]")


def exactly(value: float) -> Tolerance:
    """:math:`e = v` (exact quantities: ranks, counts, signs)."""
    return Tolerance((value, value), f"= {_g(value)} exactly")


# ---------------------------------------------------------------- criteria, controls, premises

@dataclass(frozen=True)
class Criterion:
    """One named part of a claim: a prediction, a measurement, the accepted region.

    ``judged=False`` marks a criterion that is reported but not part of the claim (it never
    enters the verdict).  ``min_n`` is the number of replicates below which the criterion is
    ``undecided`` (kind ``too_few_seeds``) whatever its interval; ``undecided_kind`` names what
    an undecided interval means here (``straddles`` by default, ``not_converged`` for a limit
    judged at a finite horizon)."""

    name: str
    prediction: Any
    measurement: Measurement
    tolerance: Tolerance
    note: str = ""
    judged: bool = True
    min_n: int = 1
    undecided_kind: str = "straddles"

    def __post_init__(self):
        if self.undecided_kind not in ("straddles", "not_converged"):
            raise ValueError(f"undecided_kind must be 'straddles' or 'not_converged', got {self.undecided_kind!r}")

    @property
    def outcome(self) -> str:
        low, high = self.measurement.interval
        a, b = self.tolerance.accepted
        if not _finite(self.measurement.estimate) or math.isnan(low) or math.isnan(high):
            return "fail"
        if high < a or low > b:
            return "fail"
        if self.measurement.n < self.min_n:
            return "undecided"
        if a <= low and high <= b:
            return "pass"
        return "undecided"

    @property
    def kind(self) -> str | None:
        """Why an undecided criterion is undecided."""
        if self.outcome != "undecided":
            return None
        return "too_few_seeds" if self.measurement.n < self.min_n else self.undecided_kind

    def describe(self) -> str:
        """``name: estimate [interval] vs accepted [a, b] (prediction p)``."""
        m = self.measurement
        shown = _g(m.estimate) + ("" if m.interval[0] == m.interval[1] else f" {_span(m.interval)}")
        return (f"{self.name}: {shown}{f' (n = {m.n})' if m.n > 1 else ''}, prediction {_g(self.prediction)} "
                f"{self.tolerance.text}")

    def to_dict(self) -> dict:
        m = self.measurement
        return {"name": self.name, "judged": self.judged, "prediction": self.prediction, "estimate": m.estimate,
                "interval": list(m.interval), "n": m.n, "method": m.method, "values": list(m.values),
                "tolerance": self.tolerance.text, "accepted": list(self.tolerance.accepted), "note": self.note,
                "min_n": self.min_n, "undecided_kind": self.undecided_kind, "outcome": self.outcome}

    @classmethod
    def from_dict(cls, data: dict) -> "Criterion":
        """Inverse of :meth:`to_dict`; the stored ``outcome`` is ignored (it is recomputed)."""
        try:
            interval = tuple(_number(v) for v in data["interval"])
            accepted = tuple(_number(v) for v in data["accepted"])
            if len(interval) != 2 or len(accepted) != 2:
                raise ValueError("interval and accepted need two ends")
            measurement = Measurement(_number(data["estimate"]), interval, int(data.get("n", 1)),
                                      str(data.get("method", "exact")),
                                      tuple(_number(v) for v in data.get("values", ())))
            return cls(str(data["name"]), data.get("prediction"), measurement,
                       Tolerance(accepted, str(data.get("tolerance", ""))), str(data.get("note", "")),
                       bool(data.get("judged", True)), int(data.get("min_n", 1)),
                       str(data.get("undecided_kind", "straddles")))
        except (KeyError, TypeError, ValueError) as err:
            raise IbcheckError(f"malformed criterion record: {err}") from None


def _number(value) -> float:
    """A float from a JSON value (non-finite floats are stored as the strings 'nan', 'inf', '-inf')."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def control(name: str, prediction: Any, measurement: Measurement, tolerance: Tolerance, note: str = "") -> Criterion:
    """A deliberately wrong prediction of the same kind, judged on the claim's own measurement;
    it is *rejected* when its criterion fails."""
    return Criterion(name, prediction, measurement, tolerance, note, judged=False)


def rejected(control_criterion: Criterion | None) -> bool | None:
    """Whether the control was rejected (None: no control applies)."""
    return None if control_criterion is None else control_criterion.outcome == "fail"


@dataclass(frozen=True)
class Premise:
    """A hypothesis of the result being tested, measured on this run.

    ``consequence`` says what a failure means: ``inconclusive`` (the theorem's guarantee is
    unclear at this size) or ``not_applicable`` (the theorem says nothing about this case)."""

    name: str
    measured: Any
    holds: bool
    note: str = ""
    consequence: str = "inconclusive"

    def __post_init__(self):
        if self.consequence not in ("inconclusive", "not_applicable"):
            raise ValueError(f"consequence must be 'inconclusive' or 'not_applicable', got {self.consequence!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "measured": self.measured, "holds": bool(self.holds), "note": self.note,
                "consequence": self.consequence}

    @classmethod
    def from_dict(cls, data: dict) -> "Premise":
        try:
            holds = data["holds"]
            if not isinstance(holds, bool):
                raise ValueError("holds must be a boolean")
            return cls(str(data["name"]), data.get("measured"), holds, str(data.get("note", "")),
                       str(data.get("consequence", "inconclusive")))
        except (KeyError, TypeError, ValueError) as err:
            raise IbcheckError(f"malformed premise record: {err}") from None


# ---------------------------------------------------------------- the decision

@dataclass(frozen=True)
class Decision:
    """The outcome of a claim, the kind of an ``inconclusive`` one, and the reason line."""

    verdict: str
    kind: str | None
    reason: str


def decide(criteria: list[Criterion], control_criterion: Criterion | None = None,
           premises: list[Premise] = (), setup: str = "") -> Decision:
    """The outcome of a claim (module docstring, rules 1-6); ``setup`` prefixes the reason."""
    judged = [c for c in criteria if c.judged]
    prefix = f"{setup}; " if setup else ""
    if not judged:
        return Decision("error", None, prefix + "no judged criterion (a check must judge at least one)")
    for consequence, verdict, kind in (("not_applicable", "not_applicable", None), ("inconclusive", "inconclusive", "premise")):
        failed = [p for p in premises if not p.holds and p.consequence == consequence]
        if failed:
            return Decision(verdict, kind, prefix + "premise not met: " + "; ".join(
                f"{p.name} (measured {_g(p.measured)}{f': {p.note}' if p.note else ''})" for p in failed))
    failed = [c for c in judged if c.outcome == "fail"]
    if failed:
        return Decision("disagrees", None, prefix + "failed: " + "; ".join(
            f"{c.describe()}: outside the accepted region" for c in failed))
    undecided = [c for c in judged if c.outcome == "undecided"]
    if undecided:
        first = undecided[0]
        return Decision("inconclusive", first.kind, prefix + "undecided: " + "; ".join(
            f"{c.describe()}: " + ("too few replicates" if c.kind == "too_few_seeds" else
                                   "not converged at the horizon" if c.kind == "not_converged" else
                                   "interval straddles the tolerance") for c in undecided))
    passed = f"all {len(judged)} criteria inside their tolerance" if len(judged) > 1 else \
        f"the criterion ({judged[0].name}) inside its tolerance"
    if control_criterion is None:
        return Decision("inconclusive", "no_power", prefix + passed + ", but no control was judged (no power shown)")
    if control_criterion.outcome != "fail":
        return Decision("inconclusive", "no_power", prefix + passed + f", but the control was not rejected "
                        f"({control_criterion.describe()}): no power at this size")
    return Decision("agrees", None, prefix + passed + f"; control rejected ({control_criterion.name})")


__all__ = ["CRITERION_OUTCOMES", "INCONCLUSIVE_KINDS", "LEVEL", "OUTCOMES", "Criterion", "Decision", "Measurement",
           "Premise", "Tolerance", "at_least", "at_most", "between", "control", "decide", "exactly", "rejected",
           "within", "within_relative"]
