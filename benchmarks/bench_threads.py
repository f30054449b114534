"""Benchmark: the thread policy (numerics/threads.py) against forced single thread and no policy.

In one process, interleaved and after a warm-up (so caches and import costs are out), each
workload runs ``--repeat`` times in three ways:

* ``policy``: as ibcheck runs it (``run_check`` inside ``small_work``; ``tangent_kernel`` picks
  by size);
* ``forced 1``: everything limited to one thread from outside (torch and threadpoolctl);
* ``no policy``: the library defaults (torch and OpenBLAS use every CPU), i.e. before issue 18.

It prints medians and the ratios policy / forced-1 (target: within 10 %, issue 18) and
no-policy / policy, with the load average, because absolute times on a shared machine mean little.

    python benchmarks/bench_threads.py [--repeat N] [--check kernel-fit-1d]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check", default="kernel-fit-1d")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    import theory
    from numerics import threads
    from numerics.checks import Context, get_check, run_check
    from numerics.networks import Init, ShallowNetwork

    check, act = get_check(args.check), theory.activation("relu")
    net = ShallowNetwork(act, 1000, 1, Init(), seed=0)
    x = torch.linspace(-2, 2, 60, dtype=torch.float64)[:, None]

    def kernel_blocks():
        for _ in range(200):  # many small blocks, as kernel-fit and the linearized model make them
            net.tangent_kernel(x, x)

    workloads = {f"run_check({args.check})": lambda: run_check(check, act, Context()),
                 "tangent_kernel 200 x (60 x 60, width 1000)": kernel_blocks}
    default_torch = torch.get_num_threads()

    @contextlib.contextmanager
    def forced_one():
        torch.set_num_threads(1)
        try:
            with threadpool_limits(1):
                yield
        finally:
            torch.set_num_threads(default_torch)

    @contextlib.contextmanager
    def no_policy():  # what ran before issue 18: the policy's contexts do nothing
        saved = threads.limited
        threads.limited = lambda n: contextlib.nullcontext()
        try:
            yield
        finally:
            threads.limited = saved

    modes = {"policy": contextlib.nullcontext, "forced 1": forced_one, "no policy": no_policy}
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs; torch default threads {default_torch}; "
          f"policy: {threads.describe()}")
    for name, work in workloads.items():
        work()  # warm-up: caches, lazy imports, first-call compilation
        times = {mode: [] for mode in modes}
        for _ in range(args.repeat):
            for mode, context in modes.items():
                with context():
                    start = time.perf_counter()
                    work()
                    times[mode].append(time.perf_counter() - start)
        median = {mode: statistics.median(values) for mode, values in times.items()}
        print(f"\n{name}: median of {args.repeat}")
        for mode, value in median.items():
            print(f"  {mode:<10} {value:8.3f} s")
        print(f"  policy / forced 1  = {median['policy'] / median['forced 1']:.2f}  (target <= 1.10)")
        print(f"  no policy / policy = {median['no policy'] / median['policy']:.2f}")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
