"""Benchmark of the kernel-regime numerics (run: ``python benchmarks/bench_kernel_regime.py``).

Measures, on the 1D toy data (spectral_bias.md 6.3):

1. the machine's float64 matmul rate (the hardware reference);
2. a random-feature (output layer, minimum-norm) ReLU fit at width 1e5, evaluated on 161 grid
   points of the data hull (target < 10 s on 2 cores);
3. full training (all layers, NTK parameterization, Gaussian antisymmetric init) of a ReLU
   network of width 1e4 for a fixed number of steps (``--steps-train``; the final loss is
   printed), in parameter updates per second and in achieved FLOP/s next to the matmul rate, so
   that the gap to the hardware limit is visible;
4. the ``activation-specificity`` check on its default set of 6 activations (one feature draw per
   activation, exact predictions by quadrature; target < 60 s on 2 cores), in a fresh process
   state (no kernel or fit remembered yet).

Options: ``--threads N`` (default: torch's default), ``--width-rf``, ``--width-train``, ``--steps-train``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import theory
from numerics import data
from numerics.kernel_regime import TRAINING_INIT, fit_setup, hull_grid, random_feature_fit
from numerics.networks import ShallowNetwork, as_tensor, train


def matmul_rate(size: int = 1024, repeats: int = 5) -> float:
    """Best-of float64 GFLOP/s of a size x size matmul."""
    a = torch.randn(size, size, dtype=torch.float64)
    b = torch.randn(size, size, dtype=torch.float64)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def random_feature_benchmark(width: int) -> dict:
    x, y = data.toy_1d()
    relu = theory.activation("relu")
    grid = hull_grid(x, 0.01)
    start = time.perf_counter()
    fit = random_feature_fit(relu, x, y, width, fit_setup(relu, 1).init, seed=0)
    values = fit(grid)
    elapsed = time.perf_counter() - start
    evaluations = width * (len(grid) + 2 * len(x))  # features on the grid and (twice) on the data
    return {"seconds": elapsed, "feature_evals_per_s": evaluations / elapsed,
            "max_abs_fit": float(np.max(np.abs(values))), "grid_points": len(grid)}


def training_benchmark(width: int, steps: int) -> dict:
    x, y = data.toy_1d()
    relu = theory.activation("relu")
    net = ShallowNetwork(relu, width, 1, TRAINING_INIT, "ntk", seed=0)
    x_t = as_tensor(x)
    lam = float(torch.linalg.eigvalsh(net.tangent_kernel(x_t, x_t) / len(x)).max())
    lr = 1.0 / lam  # eta lambda_max / N = 1, half the stability limit
    start = time.perf_counter()
    history = train(net, x, y, steps, lr, layers="all")
    elapsed = time.perf_counter() - start
    params = 3 * width
    # forward z = x w + b, sigma, f = sigma v; backward grads of v, w, b: about 6 multiply-adds per
    # neuron and data point in matmul-like ops, i.e. ~12 flops
    flops_per_step = 12 * len(x) * width
    return {"steps": steps, "final_loss": history.loss[-1], "seconds": elapsed, "step_ms": 1e3 * elapsed / steps,
            "parameter_updates_per_s": params * steps / elapsed, "gflops": flops_per_step * steps / elapsed / 1e9,
            "step_size": lr}


def specificity_benchmark() -> dict:
    from numerics.checks import Context, all_checks, run_check

    start = time.perf_counter()
    result = run_check(all_checks()["activation-specificity"], theory.activation("relu"), Context())
    return {"seconds": time.perf_counter() - start, "verdict": result.verdict,
            "inconclusive_pairs": result.details.get("inconclusive_pairs")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--width-rf", type=int, default=100_000)
    parser.add_argument("--width-train", type=int, default=10_000)
    parser.add_argument("--steps-train", type=int, default=6_000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    rate = matmul_rate()
    rf = random_feature_benchmark(args.width_rf)
    tr = training_benchmark(args.width_train, args.steps_train)
    print(f"kernel-regime benchmark (torch {torch.__version__}, {threads} thread(s), float64)")
    print(f"{'measurement':<48}{'value':>16}")
    print("-" * 64)
    print(f"{'matmul 1024^3 float64 (GFLOP/s)':<48}{rate:>16.2f}")
    print(f"{'random-feature fit, ReLU, n = %d (s)' % args.width_rf:<48}{rf['seconds']:>16.3f}")
    print(f"{'  feature evaluations per second':<48}{rf['feature_evals_per_s']:>16.3e}")
    print(f"{'  target < 10 s':<48}{'met' if rf['seconds'] < 10 else 'MISSED':>16}")
    print(f"{'full training, ReLU, n = %d' % args.width_train:<48}")
    print(f"{'  steps':<48}{tr['steps']:>16d}")
    print(f"{'  final loss':<48}{tr['final_loss']:>16.2e}")
    print(f"{'  time (s)':<48}{tr['seconds']:>16.2f}")
    print(f"{'  time per step (ms)':<48}{tr['step_ms']:>16.3f}")
    print(f"{'  parameter updates per second':<48}{tr['parameter_updates_per_s']:>16.3e}")
    print(f"{'  achieved GFLOP/s (~12 N n flops per step)':<48}{tr['gflops']:>16.3f}")
    print(f"{'  fraction of the matmul rate':<48}{tr['gflops'] / rate:>16.2%}")
    sp = specificity_benchmark()
    print(f"{'activation-specificity, 6 activations (s)':<48}{sp['seconds']:>16.1f}")
    print(f"{'  verdict':<48}{sp['verdict']:>16}")
    print(f"{'  target < 60 s':<48}{'met' if sp['seconds'] < 60 else 'MISSED':>16}")


if __name__ == "__main__":
    main()
