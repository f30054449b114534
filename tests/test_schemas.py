"""Every JSON output of ibcheck fits its versioned schema (numerics/schemas), and the schemas
reject what they should."""

from __future__ import annotations

import copy
import json

import fake_checks as fakes
import pytest

from numerics.cli import main
from numerics.schemas import NAMES, SCHEMA_VERSION, load, validate
from theory.derivation import DERIVE_SCHEMA_VERSION
from theory.errors import IbcheckError

pytest.importorskip("jsonschema")


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IBCHECK_PROGRESS", "0")
    monkeypatch.delenv("IBCHECK_CACHE_DIR", raising=False)


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv", [
    ["relu"], ["sin"], ["leaky_relu(a=0.2)"], ["softplus"], ["(x+abs(x))/2 + 0.1*sin(x)"], ["heaviside(x)*x"],
    ["x/(1+abs(x))", "--dim", "2"], ["tanh", "--kernel", "gaussian"], ["step", "--kernel", "gaussian"],
    ["--architecture", "2-3-1"],
])
def test_derive_output_fits_the_schema(capsys, argv):
    data = _json(capsys, "derive", *argv, "--format", "json")
    assert data["schema_version"] == DERIVE_SCHEMA_VERSION
    validate("derive", data)


def test_check_and_report_outputs_fit_the_schema(capsys, tmp_path):
    with fakes.registered(fakes.AGREE, fakes.DISAGREE, fakes.RAISE):
        records = _json(capsys, "check", "relu", "--only", "fake-agree,fake-disagree,fake-raise", "--format", "json",
                        "--jobs", "1")
    assert {r["schema_version"] for r in records} == {SCHEMA_VERSION}
    validate("check", records)
    saved = json.loads((tmp_path / "reports" / "relu" / "report.json").read_text())
    assert saved["schema_version"] == SCHEMA_VERSION
    validate("report", saved)


def test_schemas_reject_broken_documents(capsys):
    data = _json(capsys, "derive", "sin", "--format", "json")
    for broken in ({k: v for k, v in data.items() if k != "point_masses"},
                   dict(data, status="fine"), dict(data, schema_version="2.0"),
                   dict(data, sections=[{"title": "t", "status": "maybe", "reason": ""}])):
        with pytest.raises(IbcheckError, match="does not fit"):
            validate("derive", broken)
    record = {"check": "c", "activation": "relu", "prediction": 1, "measured": 1, "tolerance": 0.1,
              "verdict": "inconclusive", "details": {}, "reason": "", "tolerance_note": "", "seed": 0,
              "parameters": {}, "runtime_s": 0.1, "inconclusive_kind": None, "criteria": [], "control": None,
              "premises": [], "schema_version": SCHEMA_VERSION}
    with pytest.raises(IbcheckError, match="inconclusive_kind"):
        validate("check", [record])  # inconclusive needs its kind
    validate("check", [dict(record, inconclusive_kind="straddles")])
    bad = copy.deepcopy(dict(record, verdict="agrees", criteria=[{"name": "slope", "judged": True}]))
    with pytest.raises(IbcheckError, match="criteria/0"):
        validate("check", [bad])


def test_schemas_are_package_data_with_ids():
    assert {load(name)["$id"] for name in NAMES} == {f"urn:ibcheck:schema:{name}" for name in NAMES}
    with pytest.raises(IbcheckError, match="unknown schema"):
        load("nothing")
