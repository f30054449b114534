"""Benchmark: CPU seconds of each check over the built-in activations, in one process, one thread.

The suite's workers keep what they computed (symbolic derivations, exact infinite-width kernels,
activation-specificity fits) and take an activation's tasks in turn, so the cost that matters is
a check's CPU time over many activations in one process, not one cold call.  This runs the given
checks (default: the kernel-regime ones, the heaviest) on every built-in activation (or
``--activations``), each check in a fresh process, and prints ``time.process_time()`` per
(check, activation), the total per check and each verdict: CPU time is what a loaded machine does
not distort much (wall time is), so compare totals measured on the same machine, and note the
load (``uptime``) next to them.

    python benchmarks/bench_check_cpu.py [--checks ID,...] [--activations A,...] [--profile quick|full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HEAVY = "kernel-training,kernel-fit-2d,kernel-rate,kernel-fit-1d,activation-specificity,one-step-collapse"

_CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
import theory
from numerics.checks import Context, all_checks, run_check
check, names, profile = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
rows = []
for name in names:
    start = time.process_time()
    result = run_check(all_checks()[check], theory.activation(name), Context(profile=profile))
    rows.append([name, time.process_time() - start, result.verdict, result.inconclusive_kind])
print(json.dumps(rows))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default=HEAVY)
    parser.add_argument("--activations", help="comma-separated (default: every built-in)")
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    if args.activations:
        names = args.activations
    else:
        import theory

        names = ",".join(theory.builtin_names())
    env = dict(os.environ, IBCHECK_PROGRESS="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"{'check':<24} {'activation':<12} {'CPU s':>8}  verdict")
    for check in args.checks.split(","):
        done = subprocess.run([sys.executable, "-c", _CHILD, check, names, args.profile], capture_output=True,
                              text=True, env=env, check=False)
        if done.returncode != 0:
            sys.exit(f"{check} failed: {done.stderr.strip()[-500:]}")
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        for name, cpu, verdict, kind in rows:
            print(f"{check:<24} {name:<12} {cpu:>8.2f}  {verdict}{f' ({kind})' if kind else ''}")
        print(f"{check:<24} {'TOTAL':<12} {sum(r[1] for r in rows):>8.2f}")
    with open("/proc/loadavg") as handle:
        print(f"load average at the end: {handle.read().split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
