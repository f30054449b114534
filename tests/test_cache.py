"""The result cache: keys change with every input that determines a result, records round-trip,
errors are not kept, and a broken or unwritable cache never breaks a run."""

from __future__ import annotations

import json

import pytest

import theory
from numerics import cache as cache_module
from numerics.cache import ResultCache, cache_inputs, cache_key, code_version

RELU = theory.activation("relu")
BASE = {"check": "kernel-fit", "profile": "quick", "seed": 0, "options": {"width": "100"}}
RECORD = {"check": "kernel-fit", "verdict": "agrees", "measured": 1.5, "details": {"x": [1, 2]}}


def key(act=RELU, **changes):
    return cache_key(cache_inputs(act, **{**BASE, **changes}))


@pytest.mark.parametrize("change", [
    {"check": "pinning"}, {"profile": "full"}, {"seed": 1}, {"options": {"width": "200"}}, {"options": {}},
])
def test_key_changes_with_each_run_input(change):
    assert key(**change) != key()


@pytest.mark.parametrize("other", ["leaky_relu", "leaky_relu(a=0.2)", "abs", "max(0, x)"])
def test_key_changes_with_the_activation(other):
    # leaky_relu vs leaky_relu(a=0.2): same name, different parameter value and expression;
    # max(0, x) is relu as a formula: same expression, different label
    assert key(theory.activation(other)) != key()


def test_key_changes_when_a_data_file_is_edited_in_place(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0,1\n1,2\n")
    before = key(options={"data": str(path)})
    path.write_text("x,y\n0,1\n1,3\n")
    assert key(options={"data": str(path)}) != before


def test_default_and_explicit_parameters_share_a_key():
    assert key(theory.activation("leaky_relu")) == key(theory.activation("leaky_relu(a=0.1)"))


def test_key_changes_with_the_code_version(monkeypatch):
    before = key()
    monkeypatch.setitem(cache_module.__dict__, "code_version", lambda: "0123456789abcdef")
    assert key() != before


def test_code_version_is_a_stable_hash():
    assert len(code_version()) == 16 and int(code_version(), 16) >= 0
    code_version.cache_clear()
    assert len(code_version()) == 16  # recomputed from the files: same sources, same hash


def test_store_then_load_round_trips(tmp_path):
    inputs = cache_inputs(RELU, **BASE)
    store = ResultCache(tmp_path)
    assert store.load(inputs) is None
    store.store(inputs, RECORD)
    again = ResultCache(tmp_path)
    assert again.load(inputs) == RECORD
    assert (again.hits, again.misses, store.misses) == (1, 0, 1)
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["inputs"] == inputs  # says what it is
    assert not list(tmp_path.rglob("*.tmp"))


def test_errors_are_not_stored(tmp_path):
    inputs = cache_inputs(RELU, **BASE)
    store = ResultCache(tmp_path)
    store.store(inputs, dict(RECORD, verdict="error"))
    store.store(cache_inputs(RELU, "derivation"), {"status": "error", "error": "time limit"})
    assert not list(tmp_path.rglob("*.json"))


def test_no_cache_reads_nothing_but_refreshes(tmp_path):
    inputs = cache_inputs(RELU, **BASE)
    ResultCache(tmp_path).store(inputs, RECORD)
    fresh = ResultCache(tmp_path, read=False)
    assert fresh.load(inputs) is None
    fresh.store(inputs, dict(RECORD, measured=2.5))
    assert ResultCache(tmp_path).load(inputs)["measured"] == 2.5


def test_corrupt_or_foreign_entries_are_misses(tmp_path):
    inputs = cache_inputs(RELU, **BASE)
    store = ResultCache(tmp_path)
    store.store(inputs, RECORD)
    path = next(tmp_path.rglob("*.json"))
    path.write_text("{not json")
    assert store.load(inputs) is None
    path.write_text(json.dumps({"inputs": dict(inputs, seed=99), "record": RECORD}))  # same file, other inputs
    assert store.load(inputs) is None


def test_unwritable_cache_warns_once_and_carries_on(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    store = ResultCache(blocker / "cache")
    store.store(cache_inputs(RELU, **BASE), RECORD)
    store.store(cache_inputs(RELU, **dict(BASE, seed=1)), RECORD)
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the result cache") == 1 and err.count("\n") == 1
    assert store.load(cache_inputs(RELU, **BASE)) is None


def test_default_directory_and_environment_override(tmp_path, monkeypatch):
    monkeypatch.delenv("IBCHECK_CACHE_DIR", raising=False)
    assert str(ResultCache().directory) == ".ibcheck-cache"
    monkeypatch.setenv("IBCHECK_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert ResultCache().directory == tmp_path / "elsewhere"
