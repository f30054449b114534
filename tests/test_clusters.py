"""The shipped cluster executors on real local clusters: Dask (and Ray, slow): the same verdicts as
the process pool, time limits that fire inside cluster workers (threads, where SIGALRM cannot
reach), and a clean close.  Skipped when the engine is not installed (``pip install
'ibcheck[dask]'``; the ``test`` extra installs Dask so that CI runs these)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import fake_checks as fakes
from numerics import checks
from numerics.cache import ResultCache
from numerics.clusters import DaskExecutor
from numerics.executor import Failed, ProcessExecutor, executor_from_name
from numerics.suite import run_suite
from theory.errors import IbcheckError, TimeLimitExceeded
from theory.timeouts import time_limit

FAKES = (fakes.AGREE, fakes.DISAGREE, fakes.RAISE, fakes.RELU_ONLY)
TESTS = Path(__file__).resolve().parent


def register_fakes() -> None:
    """Run on every cluster worker: the registry holds only the fake checks (workers do not inherit
    the test's registry; without the real check modules they start in a fraction of the time)."""
    checks.CHECK_MODULES = ()
    checks.REGISTRY.update({fake.id: fake for fake in FAKES})


def spin_under_limit(seconds, say):
    """A task that would run forever: the time limit stops it; reports where it ran."""
    try:
        with time_limit(seconds, "spinning on a worker"):
            while True:
                pass
    except TimeLimitExceeded as err:
        return {"message": str(err), "main_thread": threading.current_thread() is threading.main_thread()}


def _worker_environment(monkeypatch) -> None:
    """Cluster workers are fresh processes: they find ibcheck and this folder through PYTHONPATH."""
    paths = [str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def _verdicts(report) -> dict:
    return {(a.label, r.check): (r.verdict, r.reason) for a in report.activations for r in a.results}


@pytest.fixture(scope="module")
def dask_executor():
    pytest.importorskip("distributed")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _worker_environment(monkeypatch)
        executor = executor_from_name("dask", jobs=2)
    executor.client.run(register_fakes)
    yield executor
    executor.close()


def test_dask_gives_the_verdicts_of_the_process_pool(dask_executor, tmp_path):
    assert dask_executor.description == "Dask local cluster, 2 worker processes"
    ids = [fake.id for fake in FAKES]
    with fakes.registered(*FAKES, alone=True):
        reports = [run_suite(["relu", "abs"], only=ids, executor=executor, cache=ResultCache(tmp_path / name))
                   for name, executor in (("dask", dask_executor), ("process", ProcessExecutor(2)))]
    dask, process = map(_verdicts, reports)
    assert dask == process
    assert dask[("relu", "fake-raise")] == ("error", "internal error: RuntimeError: boom in a fake check")
    assert dask[("abs", "fake-relu-only")][0] == "not_applicable"
    assert dask[("relu", "fake-agree")][0] == "agrees" and dask[("relu", "fake-disagree")][0] == "disagrees"
    assert reports[0].executor == "Dask local cluster, 2 worker processes"


def test_a_time_limit_fires_inside_a_dask_worker(dask_executor):
    (index, value), = dask_executor.run(spin_under_limit, [0.3])
    assert not isinstance(value, Failed), value
    assert value["message"].startswith("spinning on a worker took longer than 0.3 s")
    assert value["main_thread"] is False  # a Dask worker thread: SIGALRM would never have fired here


_CLOSE = """
from numerics.executor import executor_from_name
with executor_from_name("dask", jobs=1) as executor:
    print(sorted(value for _, value in executor.run(pow, [2, 3])))
"""


def test_the_dask_executor_closes_cleanly(monkeypatch):
    pytest.importorskip("distributed")
    _worker_environment(monkeypatch)
    done = subprocess.run([sys.executable, "-c", _CLOSE.replace("pow", "lambda item, say: item * item")],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[4, 9]"
    assert "still alive" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_an_unreachable_scheduler_is_a_clean_error():
    pytest.importorskip("distributed")
    with pytest.raises(IbcheckError, match="cannot reach the scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1)  # port 9 (discard): nothing listens


@pytest.mark.slow
def test_ray_gives_the_answers_and_time_limits_of_the_process_pool(monkeypatch):
    pytest.importorskip("ray")
    _worker_environment(monkeypatch)
    with executor_from_name("ray", jobs=2) as executor:
        values = dict(executor.run(spin_under_limit, [0.2, 0.3]))
    assert values[0]["message"].startswith("spinning on a worker took longer than 0.2 s")
    assert values[1]["message"].startswith("spinning on a worker took longer than 0.3 s")


@pytest.mark.parametrize("engine, module", [("dask", "distributed"), ("ray", "ray")])
def test_a_missing_engine_is_a_clean_error(engine, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # what `import ray` does where it is not installed
    with pytest.raises(IbcheckError, match=rf"--executor {engine} needs {engine}: pip install ibcheck\[{engine}\]"):
        executor_from_name(engine, jobs=1)
