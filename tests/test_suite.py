"""Running checks over activations: verdicts per activation, containment of failures, the cache,
serial vs process pool, fail-fast input validation and progress output."""

from __future__ import annotations

import base64

import fake_checks as fakes
import pytest

import theory
from numerics.cache import ResultCache
from numerics.checks import CheckResult, Plot, Series
from numerics.executor import ProcessExecutor, SerialExecutor
from numerics.suite import ActivationSpec, result_from_dict, run_suite, standard_suite
from theory.errors import IbcheckError

FAKES = (fakes.AGREE, fakes.DISAGREE, fakes.RAISE, fakes.RELU_ONLY)
IDS = [f.id for f in FAKES]


@pytest.fixture
def registry():
    with fakes.registered(*FAKES, fakes.SLOW, fakes.INTERRUPT):
        yield


def run(activations, tmp_path, executor=None, **kwargs):
    kwargs.setdefault("only", IDS)
    return run_suite(activations, executor=executor or SerialExecutor(),
                     cache=kwargs.pop("cache", ResultCache(tmp_path / "cache")), **kwargs)


def test_every_activation_gets_every_check_in_order(registry, tmp_path):
    report = run(["relu", "abs"], tmp_path)
    assert [a.label for a in report.activations] == ["relu", "abs"]
    assert [c["id"] for c in report.checks] == IDS
    verdicts = {a.label: [r.verdict for r in a.results] for a in report.activations}
    assert verdicts == {"relu": ["agrees", "disagrees", "error", "agrees"],
                        "abs": ["agrees", "disagrees", "error", "not_applicable"]}
    other = report.activations[1]
    assert other.result("fake-relu-only").reason == "only for relu"
    failed = other.result("fake-raise")
    assert failed.reason == "internal error: RuntimeError: boom in a fake check"
    assert "_raise" in failed.details["traceback"]  # the report can show where it failed
    assert report.counts() == {"agrees": 3, "disagrees": 2, "inconclusive": 0, "not_applicable": 1, "error": 2}


def test_results_keep_seed_parameters_and_plots(registry, tmp_path):
    report = run(["relu"], tmp_path, seed=7, profile="full", options={"width": 5})
    agree = report.activations[0].result("fake-agree")
    assert agree.seed == 7
    assert agree.parameters == {"width": 5, "profile": "full", "options": {"width": 5}}
    assert agree.plots[0].yscale == "log" and agree.plots[0].series[1].style == "dashed"
    drawn = report.activations[0].drawn["fake-agree"]  # drawn where the check ran, cached with it
    assert len(drawn) == 1 and base64.b64decode(drawn[0]["png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.seed == 7 and report.profile == "full" and report.options == {"width": "5"}
    assert report.environment["sympy"] == __import__("sympy").__version__


def test_derivation_summary_comes_with_each_activation(registry, tmp_path):
    relu = run(["relu"], tmp_path).activations[0]
    results = {r["key"]: r for r in relu.derivation["results"]}
    # spectral_bias.md, table of activations: ReLU has W(omega) = omega^4 and null space order 2
    assert results["spectral_weight"]["text"] == "W(omega) = omega**4"
    assert "<msup><mi>\u03c9</mi><mn>4</mn></msup>" in results["spectral_weight"]["mathml"]
    assert results["null_space_order"]["text"] == "m = 2"
    assert relu.derivation["steps"] and relu.derivation["status"] == "closed_form_verified"


def test_a_rerun_reuses_the_cache_and_no_cache_recomputes(registry, tmp_path):
    first = run(["relu"], tmp_path)
    assert fakes.CALLS["fake-agree"] == 1 and first.cache["hits"] == 0
    second = run(["relu"], tmp_path)
    assert fakes.CALLS["fake-agree"] == 1  # not run again
    assert second.cache["hits"] == 4  # derivation, agree, disagree, relu-only; the error is retried
    assert fakes.CALLS["fake-raise"] == 2
    assert sorted(second.activations[0].cached) == ["derivation", "fake-agree", "fake-disagree", "fake-relu-only"]
    assert [r.to_dict() | {"runtime_s": 0} for r in second.activations[0].results] == \
           [r.to_dict() | {"runtime_s": 0} for r in first.activations[0].results]
    run(["relu"], tmp_path, cache=ResultCache(tmp_path / "cache", read=False))
    assert fakes.CALLS["fake-agree"] == 2


def test_other_seed_or_profile_is_not_served_from_the_cache(registry, tmp_path):
    run(["relu"], tmp_path)
    run(["relu"], tmp_path, seed=1)
    run(["relu"], tmp_path, profile="full")
    assert fakes.CALLS["fake-agree"] == 3


def test_process_pool_gives_the_same_verdicts_as_serial(registry, tmp_path):
    serial = run(["relu", "abs"], tmp_path / "a")
    pooled = run(["relu", "abs"], tmp_path / "b", executor=ProcessExecutor(2))
    for a, b in zip(serial.activations, pooled.activations):
        assert [(r.check, r.verdict, r.measured, r.reason) for r in a.results] == \
               [(r.check, r.verdict, r.measured, r.reason) for r in b.results]
        assert a.derivation == b.derivation


def test_a_formula_not_in_the_registry(registry, tmp_path):
    # a piecewise-linear formula: its derivation takes a moment (x/(1+abs(x)) is in the slow CLI test)
    report = run(["2*max(0, x) - x"], tmp_path, only=["fake-agree"])
    activation = report.activations[0]
    assert activation.label == "2*max(0, x) - x"
    assert activation.result("fake-agree").activation == "2*max(0, x) - x"
    weight = next(r for r in activation.derivation["results"] if r["key"] == "spectral_weight")
    assert weight["text"] == "W(omega) = omega**4/4"  # 2 relu(x) - x = |x|: the notes' table gives omega^4/4


@pytest.mark.parametrize("activations, only, profile, message", [
    (["relu", "no_such_thing"], None, "quick", "unknown name 'no_such_thing'"),
    (["relu", "x**"], None, "quick", "ends too early"),
    (["relu"], ["fake-agree", "nope"], "quick", "unknown check 'nope'"),
    (["relu"], None, "slow", "unknown profile 'slow'"),
])
def test_bad_input_fails_before_any_work(registry, tmp_path, activations, only, profile, message):
    with pytest.raises(IbcheckError, match=message):
        run(activations, tmp_path, only=only or IDS, profile=profile)
    assert not fakes.CALLS


def test_duplicates_collapse_and_parameters_are_kept(registry, tmp_path):
    specs = ["relu", "relu", ActivationSpec("leaky_relu", (("a", theory.activation("leaky_relu(a=0.3)").parameters["a"]),))]
    report = run(specs, tmp_path, only=["fake-agree"])
    assert [a.label for a in report.activations] == ["relu", "leaky_relu(a=3/10)"]
    assert report.activations[1].spec == "leaky_relu --param a=3/10"


def test_an_interrupted_run_keeps_what_finished_in_the_cache(tmp_path):
    with fakes.registered(fakes.AGREE, fakes.INTERRUPT, alone=True):
        with pytest.raises(KeyboardInterrupt):
            run(["relu"], tmp_path, only=["fake-agree", "fake-interrupt"])
        report = run(["relu"], tmp_path, only=["fake-agree"])
    assert report.cache["hits"] == 2 and fakes.CALLS["fake-agree"] == 1


def test_progress_bars_on_a_terminal_only(registry, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IBCHECK_PROGRESS", "1")
    run(["relu"], tmp_path / "a", only=["fake-slow"], title="suite-title")
    err = capsys.readouterr().err
    assert "suite-title" in err and "relu: fake-slow" in err and "halfway" in err
    monkeypatch.setenv("IBCHECK_PROGRESS", "0")
    run(["relu"], tmp_path / "b", only=["fake-slow"], title="suite-title")
    assert capsys.readouterr().err == ""


def test_result_round_trips_through_its_dict():
    result = CheckResult("c", "relu", [1.0, 2.0], {"a": 1}, 0.1, "agrees", details={"x": float("nan")},
                         plots=[Plot("t", "x", "y", [Series("s", [1, 2], [3, 4], "step")], yscale="log", note="n")])
    record = result.to_dict()
    assert result_from_dict(record).to_dict() == record
    assert result_from_dict(record).plots[0].series[0].style == "step"


def test_standard_suite_is_every_builtin():
    assert [s.text for s in standard_suite()] == list(theory.BUILTINS)


# ---- a tampered or corrupt cache (issue 20): never trusted, never a crash, recomputed with one warning
def _entries(tmp_path):
    import json
    return {json.loads(p.read_text())["inputs"]["check"]: p for p in (tmp_path / "cache").rglob("*.json")}


def _rewrite(path, change, keep_checksum=True):
    """Apply ``change(entry)``; with ``keep_checksum`` the checksum is recomputed, as a careful tamperer would."""
    import json

    from numerics.cache import checksum
    entry = json.loads(path.read_text())
    change(entry)
    if keep_checksum:
        entry["checksum"] = checksum(entry["inputs"], entry["record"])
    path.write_text(json.dumps(entry))


def _comparable(report):
    return [[r.to_dict() | {"runtime_s": 0} for r in a.results] for a in report.activations], \
        [a.derivation for a in report.activations]


def _wrong_criterion(entry):  # the stored criterion moved outside its tolerance, the stored verdict kept
    criterion = entry["record"]["criteria"][0]
    criterion["estimate"], criterion["interval"] = 1.5, [1.49, 1.51]


TAMPERED = {
    "bad verdict": ("fake-agree", lambda e: e["record"].update(verdict="maybe"), True),
    "missing fields": ("fake-agree", lambda e: e["record"].pop("check"), True),
    "bad base64": ("fake-agree", lambda e: e["record"]["drawn"][0].update(png="@@not base64@@"), True),
    "not a png": ("fake-agree", lambda e: e["record"]["drawn"][0].update(png="aGVsbG8="), True),
    "another check's result": ("fake-agree", lambda e: e["record"].update(check="fake-disagree"), True),
    "measured edited": ("fake-disagree", lambda e: e["record"].update(measured=-2.0), False),
    "no schema": ("fake-agree", lambda e: e.pop("schema"), True),
    "derivation steps not a list": ("derivation", lambda e: e["record"].update(steps=5), True),
    "derivation mathml not text": ("derivation", lambda e: e["record"]["expression"].update(mathml=[1]), True),
    "criteria not a list": ("fake-agree", lambda e: e["record"].update(criteria={"a": 1}), True),
}


@pytest.mark.parametrize("name", list(TAMPERED))
def test_a_tampered_entry_is_recomputed_with_one_warning(registry, tmp_path, capsys, name):
    check, change, keep_checksum = TAMPERED[name]
    fresh = run(["relu"], tmp_path)
    _rewrite(_entries(tmp_path)[check], change, keep_checksum)
    capsys.readouterr()
    again = run(["relu"], tmp_path)
    assert _comparable(again) == _comparable(fresh)
    assert again.cache["corrupt"] == 1 and check not in again.activations[0].cached
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "corrupt cache entry" in warning[0]
    assert run(["relu"], tmp_path).cache["corrupt"] == 0  # overwritten by the recomputed result


def test_a_verdict_is_rejudged_from_the_stored_criteria(registry, tmp_path):
    """A consistent entry whose criterion no longer supports its stored ``agrees`` is re-judged, not trusted."""
    run(["relu"], tmp_path)
    _rewrite(_entries(tmp_path)["fake-agree"], _wrong_criterion)
    result = run(["relu"], tmp_path).activations[0].result("fake-agree")
    assert result.verdict == "disagrees" and result.criteria[0].outcome == "fail"


def test_a_flipped_bit_never_serves_altered_content(registry, tmp_path):
    import json
    import random

    fresh = run(["relu", "abs"], tmp_path)
    paths = sorted((tmp_path / "cache").rglob("*.json"))
    rng = random.Random(20)
    for _ in range(3):
        changed = 0
        for path in paths:
            data = bytearray(path.read_bytes())
            before = json.loads(data)
            bit = rng.randrange(8 * len(data))
            data[bit // 8] ^= 1 << (bit % 8)
            path.write_bytes(bytes(data))
            try:  # a flip can leave the same JSON (e.g. \u03c9 -> \u03C9): that entry is still intact
                changed += json.loads(data) != before
            except ValueError:
                changed += 1
        again = run(["relu", "abs"], tmp_path)
        assert _comparable(again) == _comparable(fresh)
        assert changed and again.cache["corrupt"] == changed  # every altered entry detected (and rewritten)


@pytest.mark.parametrize("content", [b"[1, 2]", b"\xff\xfe not utf-8", b"{", b'{"schema": 3}', b"null",
                                     b"[" * 100_000])
def test_garbage_entries_are_misses(registry, tmp_path, content):
    fresh = run(["relu"], tmp_path)
    for path in _entries(tmp_path).values():
        path.write_bytes(content)
    again = run(["relu"], tmp_path)
    assert _comparable(again) == _comparable(fresh) and again.cache["hits"] == 0
