"""Benchmark: wall time of the light commands (`ibcheck list`, `ibcheck derive relu`, `--help`).

Each command runs in a fresh process, interleaved with a bare `python -c pass` (the interpreter's
own start-up) and with `python -c "import torch"` (what a command that pulled in torch would add
at least), ``--repeat`` times; the medians of the wall time and of the child's CPU time (user +
system) are reported, with the load average: on a shared machine the wall time of a
single-threaded start-up is its CPU time plus waiting for a core, so the CPU time is the better
estimate of the wall time on an unloaded machine.  Targets (issue 18, unloaded machine): `list` < 0.5 s,
`derive relu` < 1.5 s.  That these commands import neither torch nor matplotlib is a test
(tests/test_imports.py), not a timing.

    python benchmarks/bench_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import torch": [sys.executable, "-c", "import torch"],
    "ibcheck --help": [sys.executable, "-m", "numerics", "--help"],
    "ibcheck list": [sys.executable, "-m", "numerics", "list"],
    "ibcheck derive relu": [sys.executable, "-m", "numerics", "derive", "relu"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, argv in COMMANDS.items():  # interleaved: load changes hit every command alike
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            wall[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    base = statistics.median(wall["python -c pass"])
    print(f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"median of {args.repeat} fresh processes each")
    print(f"{'command':<22} {'wall s':>7} {'min s':>6} {'minus python start-up':>22} {'CPU s (user+sys)':>17}")
    for name in COMMANDS:
        median = statistics.median(wall[name])
        print(f"{name:<22} {median:>7.2f} {min(wall[name]):>6.2f} {median - base:>22.2f} "
              f"{statistics.median(cpu[name]):>17.2f}")


if __name__ == "__main__":
    main()
