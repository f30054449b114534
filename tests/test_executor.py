"""The executors: every task yields exactly once, failures and dying workers stay contained,
work really runs in other processes, and progress messages reach the caller."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from numerics.executor import (Failed, ProcessExecutor, SerialExecutor, _next_task, default_jobs, executor_from_name,
                               guarded)
from theory.errors import IbcheckError


def square(item, say):
    say(f"squaring {item}")
    return item * item


def fail_on_three(item, say):
    if item == 3:
        raise ValueError("three is not allowed")
    return item


def sleep_and_report_pid(item, say):
    time.sleep(0.3)  # long enough that the second worker takes the next task
    return os.getpid()


def frozen_objects(item, say):
    import gc

    return gc.get_freeze_count()


def die_on_two(item, say):
    if item == 2:
        os._exit(7)  # what a segfault or the out-of-memory killer looks like from outside
    time.sleep(0.05)
    return item


EXECUTORS = [SerialExecutor, lambda: ProcessExecutor(2)]


@pytest.mark.parametrize("make", EXECUTORS, ids=["serial", "process"])
def test_every_task_yields_once_with_its_value(make):
    outcome = list(make().run(square, list(range(7))))
    assert sorted(index for index, _ in outcome) == list(range(7))
    assert all(value == index * index for index, value in outcome)


@pytest.mark.parametrize("make", EXECUTORS, ids=["serial", "process"])
def test_a_raising_task_is_contained(make):
    outcome = dict(make().run(fail_on_three, [1, 2, 3, 4]))
    assert outcome[0] == 1 and outcome[1] == 2 and outcome[3] == 4
    assert isinstance(outcome[2], Failed)
    assert outcome[2].reason == "ValueError: three is not allowed"
    assert "fail_on_three" in outcome[2].detail  # the traceback is kept for the report


@pytest.mark.parametrize("make", EXECUTORS, ids=["serial", "process"])
def test_progress_messages_reach_the_caller(make):
    seen = []
    list(make().run(square, [5, 6], notify=lambda index, message: seen.append((index, message))))
    for index, item in enumerate([5, 6]):
        assert (index, "") in seen  # started
        assert (index, f"squaring {item}") in seen


def ten_times(item, say):
    return item.value * 10


class Grouped:
    def __init__(self, affinity, value):
        self.affinity, self.value = affinity, value


def test_a_free_worker_takes_its_own_group_then_a_group_nobody_runs_then_any():
    items = [Grouped(g, i) for i, g in enumerate("aabbbcc")] + [Grouped(None, 7)]
    pending = list(range(len(items)))
    assert _next_task(items, pending, None, set()) == 0  # the first worker starts with the first group
    assert _next_task(items, pending, None, {"a"}) == 2  # the second starts a group nobody runs
    assert _next_task(items, pending, "a", {"b"}) == 1  # a worker that finished an "a" task takes the next "a"
    assert _next_task(items, pending, "a", {"b"}) == 5  # none left: a group nobody runs (not b's)
    assert _next_task(items, pending, "c", {"b"}) == 6
    assert _next_task(items, pending, "c", {"b"}) == 7  # items without affinity run in order
    assert _next_task(items, pending, None, {"b"}) == 3  # only the busy group's tasks are left: shared
    assert pending == [4]
    plain, plain_pending = [5, 6, 7], [0, 1, 2]  # items without the attribute: first in, first out
    assert [_next_task(plain, plain_pending, None, {None}) for _ in plain] == [0, 1, 2]


def test_grouped_tasks_all_run_once_in_the_pool():
    items = [Grouped(g, i) for i, g in enumerate("aaabbbccd")]
    outcome = dict(ProcessExecutor(2).run(ten_times, items))
    assert outcome == {i: 10 * i for i in range(len(items))}


def test_process_pool_runs_in_parallel_worker_processes():
    pids = [pid for _, pid in ProcessExecutor(2).run(sleep_and_report_pid, [0, 1])]
    assert os.getpid() not in pids
    assert len(set(pids)) == 2  # both workers busy at once


_AFTER_OPENMP = """
import torch
from numerics.executor import ProcessExecutor

def multiply(item, say):
    a = torch.ones(300, 300)
    return torch.get_num_threads(), float((a @ a)[0, 0])

torch.set_num_threads(2)
a = torch.ones(600, 600)
for _ in range(3):
    a @ a  # the parent's OpenMP pool is now running: a forked child using it would hang
print(sorted(set(v for _, v in ProcessExecutor(2).run(multiply, [0, 1, 2]))))
"""


def test_workers_use_one_torch_thread_even_after_the_parent_used_openmp():
    # in a subprocess with a time limit, so that a regression fails instead of hanging the suite
    done = subprocess.run([sys.executable, "-c", _AFTER_OPENMP], capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(1, 300.0)]"  # one thread each, and the product is right


def test_a_dying_worker_fails_only_its_own_task():
    outcome = dict(ProcessExecutor(2).run(die_on_two, [0, 1, 2, 3, 4, 5]))
    assert sorted(outcome) == list(range(6))
    assert isinstance(outcome[2], Failed) and "worker process died" in outcome[2].reason
    assert {i: v for i, v in outcome.items() if i != 2} == {0: 0, 1: 1, 3: 3, 4: 4, 5: 5}


def test_guarded_turns_exceptions_into_failed_but_not_interrupts():
    assert guarded(lambda item, say: item + 1, 1, print) == 2
    assert isinstance(guarded(lambda item, say: 1 / 0, 1, print), Failed)

    def interrupted(item, say):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the user's Ctrl-C must still stop the run
        guarded(interrupted, 1, print)


class CustomExecutor(SerialExecutor):
    def __init__(self, jobs):
        self.jobs = jobs


def make_custom(jobs):
    return CustomExecutor(jobs)


def test_executor_from_name():
    assert isinstance(executor_from_name("serial"), SerialExecutor)
    assert isinstance(executor_from_name("process", 1), SerialExecutor)  # one job: no pool
    pool = executor_from_name("process", 3)
    assert isinstance(pool, ProcessExecutor) and pool.jobs == 3
    assert executor_from_name("process").jobs == default_jobs() >= 1
    custom = executor_from_name(f"{__name__}:make_custom", 4)
    assert isinstance(custom, CustomExecutor) and custom.jobs == 4


@pytest.mark.parametrize("name", ["spark", "no_such_module_xyz:factory", f"{__name__}:missing", "os:getcwd", ":x"])
def test_executor_from_name_rejects_bad_names(name):
    with pytest.raises(IbcheckError) as info:
        executor_from_name(name, 2)
    assert "\n" not in str(info.value)


if sys.platform.startswith("linux"):
    def test_fork_is_the_default_start_method_on_linux():
        # workers then inherit checks registered at run time (tests, notebooks)
        assert ProcessExecutor(2).start_method == "fork"


# ---- workers die with their parent (issue 20: orphaned workers survived a SIGKILL of `ibcheck report`)
PARENT_SCRIPT = """
import os, sys, time
from numerics.executor import ProcessExecutor

def work(item, say):
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
    time.sleep(600)

if __name__ == "__main__":
    for _ in ProcessExecutor(2, start_method=sys.argv[2]).run(work, [0, 1]):
        pass
"""


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting for a reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def _wait_for(condition, limit_s: float = 60.0) -> bool:
    """Poll ``condition`` until it holds; the limit only stops a broken test, it is not a measurement."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_killing_the_parent_leaves_no_workers(tmp_path, start_method):
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, str(script), str(pids), start_method], env=env)
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) == 2), "the workers did not start"
        workers = [int(p.name) for p in pids.iterdir()]
        assert all(_alive(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers)), \
            f"workers {[p for p in workers if _alive(p)]} outlived their parent"
    finally:
        parent.kill()
        for path in pids.iterdir():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(path.name), signal.SIGKILL)


def test_a_fork_pool_runs_on_the_parents_heap_frozen_and_gives_it_back():
    """Forked workers find the parent's objects frozen (their collections skip them); the parent's
    own freeze count is what it was once the run is over, also after a failing task."""
    import gc

    before = gc.get_freeze_count()
    outcome = dict(ProcessExecutor(2, "fork").run(frozen_objects, [0, 1]))
    assert all(count > 1000 for count in outcome.values())  # the parent holds far more than 1000 objects
    assert gc.get_freeze_count() == before
    list(ProcessExecutor(2, "fork").run(fail_on_three, [3]))
    assert gc.get_freeze_count() == before
