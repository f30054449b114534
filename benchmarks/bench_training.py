"""Benchmark: the training loops next to a plain numpy loop of the same gradient descent.

Three loops, each timed interleaved with its plain numpy twin (the same GD written as a bare
numpy loop, no records, no checks: the floor at these sizes), ``--repeat`` times, medians:

* the adaptive-regime loop (``numerics.adaptive.Ensemble.train``, E7: ReLU, width 200, the six
  toy points), target >= 0.7x the numpy loop's steps/s (issue 18);
* kernel-regime training (``numerics.networks.train``, all layers, NTK parameterization, width
  1e4 on 20 points), reported also as a fraction of the matmul peak;
* the stable-rank reduced loop (``numerics.stable_rank.train``, setup A, with its records and
  activation-pattern tracking), target >= 0.7x the numpy reduced loop of
  ``benchmarks/bench_stable_rank.py`` (issue 18).

The matmul peak is numpy's float64 GEMM on 1000 x 1000 matrices on one thread; a loop's flop
rate counts the GEMM-like work of its gradient (2 flops per multiply-add).  Everything runs on
one thread (the thread policy's small-work setting), and the load average is printed: compare
the ratios, not the absolute numbers.  Each loop is timed by the wall clock and by this
process's CPU time (user + system, which a loaded machine inflates less: the loops are
single-threaded); both ratios are printed.

    python benchmarks/bench_training.py [--repeat N] [--steps N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def wall_and_cpu(fn) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process, user + system) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def matmul_peak() -> float:
    a = np.random.default_rng(0).standard_normal((1000, 1000))
    seconds = min(timed(lambda: a @ a) for _ in range(3))
    return 2 * 1000**3 / seconds


def adaptive_pair(steps: int):
    import theory
    from numerics.adaptive import ADAPTIVE, Ensemble
    from numerics.data import toy_1d

    act, (x, y) = theory.activation("relu"), toy_1d()

    def ours():
        Ensemble(act, x, y, 200, [(ADAPTIVE, 0)]).train(steps, [0, steps])

    start = Ensemble(act, x, y, 200, [(ADAPTIVE, 0)]).state()[0]
    lr, xs, n_points = Ensemble(act, x, y, 200, [(ADAPTIVE, 0)]).lr, x[:, 0], len(x)

    def plain():
        v, w, b = start[:, 0].copy(), start[:, 1].copy(), start[:, 2].copy()
        for _ in range(steps):
            z = np.outer(xs, w) + b
            s = np.maximum(z, 0)
            r = s @ v - y
            q = (z > 0) * (r[:, None] * v) / n_points
            gv = s.T @ r / n_points
            v -= lr * gv
            w -= lr * (q.T @ xs)
            b -= lr * q.sum(0)
    flops = steps * 2 * n_points * 200 * 4  # z, r, gv, the first-layer gradient
    return ours, plain, flops


def kernel_pair(steps: int):
    import torch

    import theory
    from numerics.networks import Init, ShallowNetwork, train

    act, width, n_points = theory.activation("relu"), 10_000, 20
    x = np.linspace(-1, 1, n_points)[:, None]
    y = np.sin(3 * x[:, 0])
    init = Init("gaussian", s_v=1.0)

    def ours():
        net = ShallowNetwork(act, width, 1, init, "ntk", seed=0)
        train(net, x, y, steps, 1.0, record_steps=[0, steps])

    net0 = ShallowNetwork(act, width, 1, init, "ntk", seed=0)
    scale = net0.output_scale
    v0, w0, b0 = (t.detach().numpy().copy() for t in (net0.v, net0.w[:, 0], net0.b))

    def plain():
        v, w, b = v0.copy(), w0.copy(), b0.copy()
        for _ in range(steps):
            z = np.outer(x[:, 0], w) + b
            s = np.maximum(z, 0)
            r = scale * (s @ v) - y
            q = scale * (z > 0) * (r[:, None] * v) / n_points
            v -= scale * (s.T @ r) / n_points
            w -= q.T @ x[:, 0]
            b -= q.sum(0)
    del torch
    flops = steps * 2 * n_points * width * 4
    return ours, plain, flops


def stable_rank_pair(steps: int):
    import theory
    from numerics import stable_rank as S

    act = theory.activation("leaky_relu")
    problem = S.setup_a(0)
    x, y, a, eta = problem.x, problem.y, problem.a, problem.eta
    n = len(y)
    sigma, dsigma = act.numeric("numpy"), act.numeric("numpy", 1)

    def ours():
        S.train(act, [problem], steps, record_steps=[0, steps])

    def plain():
        w0 = problem.initial_weights()
        gram, z, c = x @ x.T, w0 @ x.T, np.zeros((len(a), n))
        for _ in range(steps):
            q = y * (a @ sigma(z))
            update = (eta / n) * a[:, None] * dsigma(z) * (y / (1 + np.exp(q)))
            c += update
            z += update @ gram
    flops = steps * 2 * len(a) * n * (n + 1)
    return ours, plain, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    from numerics import threads

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.steps} steps, "
          f"median of {args.repeat}, interleaved; one thread")
    with threads.small_work():
        peak = matmul_peak()
        print(f"matmul peak (float64 GEMM 1000^3, one thread): {peak / 1e9:.1f} GFLOP/s\n")
        print(f"{'loop':<30} {'ours steps/s':>12} {'numpy steps/s':>13} {'ours/numpy':>10} {'(CPU time)':>10} "
              f"{'ours % peak':>11} {'numpy % peak':>12}")
        for name, make in (("adaptive E7 (width 200)", adaptive_pair), ("kernel training (width 1e4)", kernel_pair),
                           ("stable-rank reduced (setup A)", stable_rank_pair)):
            ours, plain, flops = make(args.steps)
            ours(), plain()  # warm-up
            times = {"ours": [], "plain": []}
            for _ in range(args.repeat):
                times["ours"].append(wall_and_cpu(ours))
                times["plain"].append(wall_and_cpu(plain))
            (wall_ours, cpu_ours), (wall_plain, cpu_plain) = (
                [statistics.median(column) for column in zip(*times[k])] for k in ("ours", "plain"))
            print(f"{name:<30} {args.steps / wall_ours:>12.0f} {args.steps / wall_plain:>13.0f} "
                  f"{wall_plain / wall_ours:>10.2f} {cpu_plain / cpu_ours:>10.2f} "
                  f"{100 * flops / wall_ours / peak:>10.2f}% {100 * flops / wall_plain / peak:>11.2f}%")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
