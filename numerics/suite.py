"""Running checks over activations: the standard suite and the runs behind ``ibcheck check`` / ``report``.

A run is a list of :class:`Task` objects: per activation, its derivation summary plus one task
per selected check.  Each task is looked up in the :class:`~numerics.cache.ResultCache`; the
misses go to an :class:`~numerics.executor.Executor` (a local process pool by default) and
their results are stored back.  Progress bars (overall, and one per running task with the
check's latest progress message) show on a terminal only.  The outcome is a
:class:`~numerics.report.model.Report`, ready for :func:`numerics.report.write_report`.

The *standard suite* is every built-in activation (default parameters) times every registered
check, with the quick profile.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import theory
from theory.activations import Activation
from theory.errors import IbcheckError, time_limits_hit

from .cache import CorruptEntry, ResultCache, cache_inputs
from .checks import PROFILES, CheckResult, Context, all_checks, check_options, run_check
from .executor import Executor, Failed, ProcessExecutor
from .progress import progress
from .report.derivation import derivation_summary
from .report.figures import drawn_record
from .report.model import ActivationReport, Report
from .reproducibility import environment

#: the pseudo check id of the derivation-summary task
DERIVATION = "derivation"


@dataclass(frozen=True)
class ActivationSpec:
    """An activation as a user gives it: text (built-in name, ``leaky_relu(a=0.2)`` or a formula)
    and parameter values; rebuilt in each worker process (sympy numbers pickle, lambdas do not)."""

    text: str
    params: tuple[tuple[str, Any], ...] = ()

    def build(self) -> Activation:
        return theory.activation(self.text, **dict(self.params))

    def __str__(self) -> str:
        extra = "".join(f" --param {k}={v}" for k, v in self.params)
        return f"{self.text}{extra}"


@dataclass(frozen=True)
class Task:
    """One unit of work: a check (or the derivation) on one activation with one profile and seed."""

    activation: ActivationSpec
    check: str
    profile: str = "quick"
    seed: int = 0
    options: tuple[tuple[str, str], ...] = ()  # only the options this check declares
    until_decided: int = 0

    @property
    def affinity(self) -> ActivationSpec:
        """Tasks of one activation share a worker where the executor allows (they share its derivations)."""
        return self.activation


@lru_cache(maxsize=64)
def _activation(spec: ActivationSpec) -> Activation:
    return spec.build()


def perform(task: Task, say=lambda message: None) -> dict:
    """Run one task (in a worker process): a JSON-ready record, never raising for a check's failure.

    A record computed while a symbolic time limit expired carries ``time_limited: true``: it
    depends on the machine's load, so the result cache does not keep it."""
    expired = time_limits_hit()
    record = _perform(task, say)
    if time_limits_hit() != expired:
        record["time_limited"] = True
    return record


def _perform(task: Task, say) -> dict:
    act = _activation(task.activation)
    if task.check == DERIVATION:
        return derivation_summary(act)
    checks = all_checks()
    if task.check not in checks:
        raise IbcheckError(f"check {task.check!r} is not registered in this worker process")
    context = Context(profile=task.profile, seed=task.seed, options=dict(task.options), progress=say,
                      until_decided=task.until_decided)
    result = run_check(checks[task.check], act, context)
    return dict(result.to_dict(), drawn=drawn_record(result.plots))  # drawn here: in parallel, and cached


def result_from_dict(record: dict) -> CheckResult:
    """A :class:`CheckResult` from its :meth:`~numerics.checks.CheckResult.to_dict` form, re-judged
    (:meth:`~numerics.checks.CheckResult.from_dict`)."""
    return CheckResult.from_dict(record)


def validated_record(task: Task, record: dict) -> dict:
    """A cached record for ``task``, checked before use; raises :class:`~numerics.cache.CorruptEntry` if unusable.

    A check record must rebuild as a :class:`CheckResult` of this check (its verdict re-judged
    from the stored criteria by :meth:`~numerics.checks.CheckResult.from_dict`, the one place a
    verdict is decided) and its drawn figures must be PNG images; a derivation record must have
    the shape :func:`~numerics.report.derivation.derivation_summary` gives.
    """
    if task.check == DERIVATION:
        _check_shape(record, _DERIVATION_SHAPE, "derivation")
        return record
    result = result_from_dict(record)
    if result.check != task.check:
        raise CorruptEntry(f"a result of {result.check!r}, not {task.check!r}")
    drawn = record.get("drawn") or []
    _check_shape(drawn, [{"png": str, "error": str}], "drawn")
    for entry in drawn:
        if "png" in entry and not base64.b64decode(entry["png"], validate=True).startswith(b"\x89PNG\r\n"):
            raise CorruptEntry("a drawn figure is not a PNG image")
    return dict(result.to_dict(), drawn=drawn)


#: the JSON shape of a derivation summary: a type, or a dict/list of shapes (dict keys optional);
#: it must follow :func:`~numerics.report.derivation.derivation_summary` (the cache-rerun test in
#: tests/test_suite.py fails if a new field makes every cached summary look corrupt)
_TEXT = (str, type(None))
_DERIVATION_SHAPE = {
    "status": str, "expression": {"text": str, "latex": str, "mathml": str}, "parameters": {str: str},
    "dim": int, "results": [{str: str}], "steps": [{str: str}], "notes": [str], "error": _TEXT,
}


def _check_shape(value, shape, where: str) -> None:
    """Raise :class:`CorruptEntry` unless ``value`` has ``shape`` (see :data:`_DERIVATION_SHAPE`)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise CorruptEntry(f"{where} is not an object")
        if list(shape) == [str]:  # any keys, one value shape
            shape = dict.fromkeys(value, shape[str])
        for key, item in value.items():
            if key not in shape:
                raise CorruptEntry(f"{where} has an unexpected field {str(key)[:40]!r}")
            _check_shape(item, shape[key], f"{where}.{key}")
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise CorruptEntry(f"{where} is not a list")
        for item in value:
            _check_shape(item, shape[0], f"{where}[]")
    elif not isinstance(value, shape) or isinstance(value, bool) and shape is int:
        raise CorruptEntry(f"{where} has the wrong type")


def _failure_record(task: Task, failure: Failed) -> dict:
    if task.check == DERIVATION:
        return {"status": "error", "error": failure.reason, "results": [], "steps": [], "notes": []}
    return CheckResult(task.check, task.activation.text, None, None, None, "error", reason=failure.reason,
                       details={"traceback": failure.detail} if failure.detail else {},
                       seed=task.seed).to_dict()


def standard_suite() -> list[ActivationSpec]:
    """Every built-in activation with its default parameters."""
    return [ActivationSpec(name) for name in theory.builtin_names()]


class _Bars:
    """The overall bar and one bar per running task (terminal only; silent otherwise)."""

    def __init__(self, total: int, desc: str, labels: list[str]):
        self.overall = progress(total, desc, unit="task", leave=False)
        self.labels = labels
        self.running: dict[int, Any] = {}
        self.finished: set[int] = set()

    def message(self, index: int, text: str) -> None:
        if index in self.finished:  # a late message from a task already done
            return
        if index not in self.running:
            bar = self.running[index] = progress(None, self.labels[index], leave=False)
            bar.bar_format = "  {desc} [{elapsed}]{postfix}"  # a running task: name, time, latest message
            bar.refresh()
        if text:
            self.running[index].set_postfix_str(text[:60])

    def done(self, index: int) -> None:
        self.finished.add(index)
        bar = self.running.pop(index, None)
        if bar is not None:
            bar.close()
        self.overall.update()

    def close(self) -> None:
        for bar in self.running.values():
            bar.close()
        self.overall.close()


def run_suite(activations: list[ActivationSpec | str], *, profile: str = "quick", seed: int = 0,
              options: dict | None = None, only: list[str] | None = None, executor: Executor | None = None,
              cache: ResultCache | None = None, title: str = "ibcheck report", command: str = "",
              until_decided: int = 0) -> Report:
    """Every selected check (all registered ones by default) on every activation, as a :class:`Report`.

    Bad input (unknown activation, malformed formula, unknown check or profile, an option that no
    selected check reads) raises :class:`IbcheckError` before any work starts.  Each check gets
    the options it declares; ``until_decided`` is the seed budget of
    :func:`~numerics.checks.run_check`.
    """
    start, started = time.perf_counter(), datetime.now().astimezone().isoformat(timespec="seconds")
    if profile not in PROFILES:
        raise IbcheckError(f"unknown profile {profile!r}; use {' or '.join(PROFILES)}")
    built: dict[ActivationSpec, Activation] = {}
    for spec in (ActivationSpec(a) if isinstance(a, str) else a for a in activations):
        act = spec.build()  # parse everything first: a typo fails fast, before minutes of work
        if all(act.label != other.label for other in built.values()):
            built[spec] = act
    checks = all_checks()
    ids = list(only) if only else list(checks)
    for check_id in ids:
        if check_id not in checks:
            raise IbcheckError(f"unknown check {check_id!r}; known: {', '.join(checks)}")
    options = {str(k): str(v) for k, v in (options or {}).items()}
    check_options(options, [checks[c] for c in ids])
    if until_decided < 0:
        raise IbcheckError(f"--until-decided takes a non-negative seed budget, got {until_decided}")

    def declared(check_id: str) -> tuple[tuple[str, str], ...]:
        known = checks[check_id].options if check_id != DERIVATION else {}
        return tuple(sorted((k, v) for k, v in options.items() if k in known))

    tasks = [Task(spec, check_id, profile, seed, declared(check_id), until_decided if check_id != DERIVATION else 0)
             for spec in built for check_id in [DERIVATION, *ids]]
    cache = cache or ResultCache()
    executor = executor or ProcessExecutor()
    records, cached = _execute(tasks, built, cache, executor, title)

    reports = []
    for spec, act in built.items():
        indices = [i for i, t in enumerate(tasks) if t.activation == spec]
        derivation = next(records[i] for i in indices if tasks[i].check == DERIVATION)
        results = [result_from_dict(records[i]) for i in indices if tasks[i].check != DERIVATION]
        for result in results:  # the label the user sees, also for results made in another process
            result.activation = act.label
        reports.append(ActivationReport(act.label, str(spec), str(act.bound), act.description, derivation, results,
                                        cached=[tasks[i].check for i in indices if i in cached],
                                        drawn={tasks[i].check: records[i].get("drawn") or [] for i in indices}))
    return Report(title, reports, [{"id": c, "title": checks[c].title, "claim": checks[c].claim} for c in ids],
                  profile, seed, options, started, time.perf_counter() - start, environment(),
                  getattr(executor, "description", type(executor).__name__), cache.describe(), command)


def _execute(tasks: list[Task], built: dict[ActivationSpec, Activation], cache: ResultCache, executor: Executor,
             title: str) -> tuple[dict[int, dict], set[int]]:
    """Records for every task (from the cache, else from the executor, then stored) and the cached indices."""
    def inputs(task: Task) -> dict:
        act = built[task.activation]
        if task.check == DERIVATION:
            return cache_inputs(act, DERIVATION)
        extra = {"--until-decided": str(task.until_decided)} if task.until_decided else {}
        return cache_inputs(act, task.check, task.profile, task.seed, {**dict(task.options), **extra})

    records = {}
    for index, task in enumerate(tasks):
        hit = cache.load(inputs(task), lambda record, task=task: validated_record(task, record))
        if hit is not None:
            records[index] = hit
    cached = set(records)
    missing = [i for i in range(len(tasks)) if i not in records]
    bars = _Bars(len(tasks), title, [f"{built[tasks[i].activation].label}: {tasks[i].check}" for i in missing])
    bars.overall.update(len(records))
    try:
        for position, value in executor.run(perform, [tasks[i] for i in missing], bars.message):
            index = missing[position]
            records[index] = _failure_record(tasks[index], value) if isinstance(value, Failed) else value
            cache.store(inputs(tasks[index]), records[index])
            bars.done(position)
    finally:
        bars.close()
    return records, cached


__all__ = ["DERIVATION", "ActivationSpec", "Task", "perform", "result_from_dict", "run_suite", "standard_suite"]
