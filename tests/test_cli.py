"""The command line: one-line errors with exit status 2 for bad input (derive, check, list,
report), and the check / report commands end to end on synthetic checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import fake_checks as fakes
import pytest

import theory
from numerics import suite
from numerics.cli import main


@pytest.fixture(autouse=True)
def quiet_in_a_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IBCHECK_PROGRESS", "0")
    monkeypatch.delenv("IBCHECK_CACHE_DIR", raising=False)


@pytest.fixture
def registry():
    with fakes.registered(fakes.AGREE, fakes.DISAGREE, fakes.RAISE, fakes.INTERRUPT):
        yield


def one_line_error(capsys, argv) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (argv, out, err)
    assert out == ""
    assert err.startswith("ibcheck: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


BAD = [
    # (argv, part of the message)
    ([], "required: command"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["derive", "no_such_activation"], "unknown name 'no_such_activation'"),
    (["derive", "x**"], "ends too early"),
    (["derive", "relu", "--format", "pdf"], "invalid choice: 'pdf'"),
    (["derive", "leaky_relu", "--param", "a"], "--param takes NAME=VALUE"),
    (["derive", "leaky_relu", "--param", "a=2"], "out of range"),
    (["derive", "exp"], "no tempered Fourier transform"),
    (["check", "no_such_activation"], "unknown name 'no_such_activation'"),
    (["check", "x**"], "ends too early"),
    (["check", "relu", "--profile", "slow"], "invalid choice: 'slow'"),
    (["check", "relu", "--only", "nope"], "unknown check 'nope'"),
    (["check", "relu", "--option", "novalue"], "--option takes KEY=VALUE"),
    (["check", "relu", "--seed", "-1"], "--seed must be an integer from 0"),
    (["check", "relu", "--seed", "one"], "invalid int value"),
    (["check", "relu", "--jobs", "0"], "--jobs must be at least 1"),
    (["check", "relu", "--executor", "nowhere"], "--executor takes"),
    (["check", "relu", "--format", "xml"], "invalid choice: 'xml'"),
    (["check", "leaky_relu", "--param", "b=1"], "has no parameter 'b'"),
    (["list", "extra"], "unrecognized arguments: extra"),
    (["report", "--activations", "relu", "no_such_activation"], "unknown name 'no_such_activation'"),
    (["report", "--activations", "relu", "sin(x"], "sin(x"),
    (["report", "--activations"], "expected at least one argument"),
    (["report", "--profile", "slow"], "invalid choice: 'slow'"),
    (["report", "--jobs", "0"], "--jobs must be at least 1"),
    (["report", "--executor", "no_such_module_xyz:make"], "cannot load it"),
    (["check", "relu", "--only", "transform", "--option", "widht=3"],
     "unknown option 'widht' for check transform; valid keys: none"),
    (["report", "--until-decided", "-5"], "--until-decided takes a non-negative seed budget"),
    # issue 20: repeated keys, an empty selection or folder, out-of-range seeds and numbers
    (["derive", "x*b", "--param", "b=1", "--param", "b=2"], "--param b is given twice"),
    (["check", "relu", "--option", "width=1", "--option", "width=2"], "--option width is given twice"),
    (["check", "relu", "--only", ","], "--only takes comma-separated check ids"),
    (["check", "relu", "--only", " "], "--only takes comma-separated check ids"),
    (["check", "relu", "--out", ""], "--out must name a folder"),
    (["check", "relu", "--seed", "99999999999999999999999"], "--seed must be an integer from 0 to 2^32 - 1"),
    (["derive", "x*b", "--param", "b=" + "*".join(["1e100"] * 15)], "out of range"),
    (["derive", "1e300*x"], "out of range"),
    (["derive", "x*1e-300"], "out of range"),
    (["report", "--activations", "x**exp(exp(exp(20)))"], "out of range"),
    (["report", "--activations", "relu(x)*sinh(1e21)"], "out of range"),
    (["design", "omega^-2"], "W* = omega**(-2) is a power law, but"),
    (["check", "relu", "--only", "fd-theorems", "--option", "trials=abc"], "--option trials=abc: invalid literal"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) or "(nothing)" for a, _ in BAD])
def test_bad_input_is_one_line_and_status_2(capsys, argv, message):
    assert message in one_line_error(capsys, argv)


@pytest.mark.parametrize("command", ["check relu", "report"])
def test_unwritable_output_folder(capsys, tmp_path, command):
    (tmp_path / "a_file").write_text("not a folder")
    err = one_line_error(capsys, command.split() + ["--out", str(tmp_path / "a_file" / "reports")])
    assert "cannot write the report" in err and "--out" in err


def test_an_unknown_option_names_the_valid_keys_and_runs_nothing(capsys, registry):
    err = one_line_error(capsys, ["check", "relu", "--only", "fake-agree,fake-disagree", "--option", "with=9"])
    assert "unknown option 'with' for checks fake-agree, fake-disagree; valid keys: width" in err
    assert not fakes.CALLS


def test_unwritable_output_is_refused_before_any_work(capsys, tmp_path, registry):
    (tmp_path / "a_file").write_text("not a folder")
    one_line_error(capsys, ["check", "relu", "--only", "fake-agree", "--out", str(tmp_path / "a_file")])
    assert not fakes.CALLS


def test_a_folder_with_user_files_is_refused_before_any_work(capsys, tmp_path, registry):
    paper = tmp_path / "paper"
    (paper / "figures").mkdir(parents=True)
    (paper / "figures" / "my_own_plot.png").write_bytes(b"mine")
    err = one_line_error(capsys, ["check", "relu", "--only", "fake-agree", "--out", str(paper)])
    assert "my_own_plot.png" in err and "--force" in err and not fakes.CALLS
    assert main(["check", "relu", "--only", "fake-agree", "--out", str(paper), "--force"]) == 0
    assert (paper / "figures" / "my_own_plot.png").read_bytes() == b"mine"


def test_a_real_process_prints_no_traceback():
    done = subprocess.run([sys.executable, "-m", "numerics", "check", "relu", "--profile", "slow"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("ibcheck: error: ") and done.stderr.count("\n") == 1


def test_a_real_process_flushes_its_output_before_it_ends(capsys):
    """The program ends with os._exit (numerics.cli.run): what it printed into a pipe (block-buffered)
    must still arrive whole, with main's status."""
    assert main(["list"]) == 0
    expected = capsys.readouterr().out
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-m", "numerics", "list"], capture_output=True, text=True, timeout=120,
                          check=False, env=buffered)
    assert done.returncode == 0 and done.stdout == expected and done.stderr == ""


def test_check_json_prints_the_records_and_writes_the_report(capsys, tmp_path, registry):
    status = main(["check", "relu", "--only", "fake-agree,fake-disagree", "--format", "json", "--jobs", "1"])
    out, err = capsys.readouterr()
    assert status == 0
    records = json.loads(out)  # stdout is exactly the JSON list
    assert [(r["check"], r["verdict"]) for r in records] == [("fake-agree", "agrees"), ("fake-disagree", "disagrees")]
    assert "plots" not in records[0] and records[0]["details"]["ratio"] == 1.04
    assert records[0]["criteria"][0]["outcome"] == "pass" and records[0]["control"]["rejected"] is True
    assert err == "ibcheck: report written to reports/relu/index.html\n"
    saved = json.loads((tmp_path / "reports" / "relu" / "report.json").read_text())
    assert saved["activations"][0]["results"][0]["plots"][0]["title"] == "fake decay"
    assert (tmp_path / ".ibcheck-cache").is_dir()  # the default cache location


def test_check_text_output_and_options(capsys, tmp_path, registry):
    status = main(["check", "leaky_relu", "--param", "a=0.3", "--only", "fake-agree,fake-raise", "--seed", "4",
                   "--option", "width=9", "--out", "here", "--jobs", "1"])
    out, _ = capsys.readouterr()
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["fake-agree", "agrees"]
    assert lines[1].split()[:2] == ["fake-raise", "error"] and "boom in a fake check" in lines[1]
    assert lines[-1] == "Report: here/index.html (also report.md, report.json)"
    saved = json.loads((tmp_path / "here" / "report.json").read_text())
    assert saved["seed"] == 4 and saved["options"] == {"width": "9"}
    assert saved["activations"][0]["label"] == "leaky_relu(a=3/10)"
    assert saved["command"] == ("ibcheck check leaky_relu --param a=0.3 --only fake-agree,fake-raise --seed 4 "
                                "--option width=9 --out here --jobs 1")


def test_check_a_formula_gets_its_own_folder(capsys, tmp_path, registry):
    assert main(["check", "2*max(0, x) - x", "--only", "fake-agree", "--jobs", "1"]) == 0
    folders = [p.name for p in (tmp_path / "reports").iterdir()]
    assert len(folders) == 1 and folders[0].startswith("formula-2-max-0-x-x-")


def test_rerun_uses_the_cache_and_no_cache_recomputes(capsys, registry):
    argv = ["check", "relu", "--only", "fake-agree", "--jobs", "1"]
    main(argv)
    main(argv)
    assert fakes.CALLS["fake-agree"] == 1
    main(argv + ["--no-cache"])
    assert fakes.CALLS["fake-agree"] == 2


def test_an_interrupted_run_leaves_the_previous_report(capsys, tmp_path, registry):
    assert main(["check", "relu", "--only", "fake-agree", "--jobs", "1", "--out", "out"]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    status = main(["check", "relu", "--only", "fake-agree,fake-interrupt", "--jobs", "1", "--out", "out"])
    assert status == 130 and capsys.readouterr().err.endswith("ibcheck: interrupted\n")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()} == before


def cheap_summary(act, dim=1):
    return {"status": "skipped in this test", "expression": None, "parameters": {}, "results": [], "steps": [],
            "notes": [], "error": None}


def test_report_with_no_arguments_runs_the_standard_suite(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "derivation_summary", cheap_summary)  # the workers fork: they see it too
    with fakes.registered(fakes.RELU_ONLY, fakes.DISAGREE, alone=True):  # no plots to draw: quick
        status = main(["report"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert "16 activations x 2 checks: 1 agrees, 16 disagrees, 0 inconclusive, 15 not applicable, 0 error" in out
    assert out.splitlines()[-1] == "Report: reports/index.html (also report.md, report.json)"
    saved = json.loads((tmp_path / "reports" / "report.json").read_text())
    labels = [theory.activation(name).label for name in theory.BUILTINS]
    assert [a["label"] for a in saved["activations"]] == labels
    for activation in saved["activations"]:  # every built-in has a verdict for every check
        assert [r["check"] for r in activation["results"]] == ["fake-relu-only", "fake-disagree"]
    assert saved["profile"] == "quick" and "process pool" in saved["executor"]
    assert (tmp_path / "reports" / "index.html").stat().st_size > 0 and (tmp_path / "reports" / "report.md").exists()


def test_report_on_chosen_activations(capsys, tmp_path):
    with fakes.registered(fakes.AGREE, alone=True):
        status = main(["report", "--activations", "relu", "abs", "--activations", "2*max(0, x) - x", "--out", "cmp",
                       "--executor", "serial"])
    assert status == 0
    saved = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert [a["label"] for a in saved["activations"]] == ["relu", "abs", "2*max(0, x) - x"]
    assert saved["executor"] == "serial, in-process"
    assert [a["results"][0]["verdict"] for a in saved["activations"]] == ["agrees"] * 3


def test_list_names_builtins_and_checks(capsys, registry):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in theory.BUILTINS)
    assert "fake-agree" in out and "Fake agreeing check [F1]" in out


@pytest.mark.slow
def test_check_a_formula_end_to_end(tmp_path):
    """The issue's example, with the real checks and a real process (the derivation takes ~1 min)."""
    done = subprocess.run([sys.executable, "-m", "numerics", "check", "x/(1+abs(x))", "--out", "softsign"],
                          capture_output=True, text=True, timeout=1800, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "softsign" / "report.json").read_text())
    assert saved["activations"][0]["label"] == "x/(1+abs(x))"
    assert all(r["verdict"] in ("agrees", "disagrees", "not_applicable", "error") for r in saved["activations"][0]["results"])
