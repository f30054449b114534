"""The thread policy (numerics/threads.py): small work on one thread, large linear algebra on the
policy's count, everything restored afterwards, and the policy parsed and recorded."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info

from numerics import threads
from numerics.reproducibility import environment
from theory.errors import IbcheckError


def blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def restore_policy():
    yield
    threads.configure("auto", share=1, torch_may_thread=True)


def test_small_work_runs_on_one_thread_and_restores():
    torch.set_num_threads(2)
    with threads.small_work():
        assert torch.get_num_threads() == 1 and blas_threads() == {1}
    assert torch.get_num_threads() == 2


def test_large_work_gets_the_policy_threads_inside_small_work():
    threads.configure(3)
    with threads.small_work():
        with threads.large_work():
            assert torch.get_num_threads() == 3 and blas_threads() == {3}
        assert torch.get_num_threads() == 1 and blas_threads() == {1}  # the outer limit again


def test_size_picks_small_or_large():
    threads.configure(2)
    with threads.for_entries(threads.LARGE_ENTRIES - 1):
        assert torch.get_num_threads() == 1
    with threads.for_entries(threads.LARGE_ENTRIES):
        assert torch.get_num_threads() == 2


def test_auto_shares_the_cpus_among_workers_and_a_forked_worker_keeps_torch_on_one_thread():
    threads.configure("auto", share=threads.available_cpus())
    assert threads.large_threads() == 1
    threads.configure("auto", share=1, torch_may_thread=False)
    assert threads.large_threads() == threads.available_cpus()
    with threads.large_work():
        assert torch.get_num_threads() == 1  # libgomp's pool does not survive fork
        assert blas_threads() == {threads.available_cpus()}


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5", ""])
def test_bad_policies_are_one_line_errors(text):
    with pytest.raises(IbcheckError, match="--threads takes 'auto' or a positive integer"):
        threads.configure(text)


def test_the_policy_is_recorded_in_the_environment():
    threads.configure("4")
    recorded = environment()
    assert recorded["threads"] == "4" and recorded["large_linear_algebra_threads"] == 4
    assert recorded["small_tensor_threads"] == 1


def test_the_command_line_policy_reaches_the_report(tmp_path, monkeypatch):
    import json

    import fake_checks as fakes
    from numerics.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IBCHECK_PROGRESS", "0")
    monkeypatch.setenv("IBCHECK_CACHE_DIR", str(tmp_path / "cache"))
    with fakes.registered(fakes.AGREE, alone=True):
        assert main(["check", "relu", "--jobs", "1", "--threads", "3", "--out", "out"]) == 0
    recorded = json.loads((tmp_path / "out" / "report.json").read_text())["environment"]
    assert recorded["threads"] == "3" and recorded["large_linear_algebra_threads"] == 3
