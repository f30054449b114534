"""Benchmark: batch functional dimension of a ~1e4-parameter ReLU network with 10 outputs.

The target of issue 9 is 1e3 inputs (a 10^4 x 9674 float64 Jacobian) in under 10 s on 2 cores.
For each batch size the script reports, in a fresh process (so the peak memory is that size's):
the Jacobian time by both routes (torch.func jacrev + vmap, closed-form blocks) and their
largest relative difference, the certified rank (`certified_rank`: the SVD's rank proved from the
structured Gram matrix by one Cholesky, no J, no SVD; its time includes the forward pass) with
its certified lower bound on the gap, the SVD rank with its time and log10 gap, the pivoted-QR
rank with its time, the size of one Jacobian and the peak resident memory (both Jacobians are held).

    python benchmarks/bench_functional_dimension.py                  # n = 125, 250, 500, 1000
    python benchmarks/bench_functional_dimension.py --inputs 125 250 --threads 1
    python benchmarks/bench_functional_dimension.py --rank-max-inputs 500   # time only J above 500

Timings on a shared machine are noisy; the BLAS thread count is part of the result (default 2,
the target's core count; on a loaded 2-core machine one thread was faster than two).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import time

ARCHITECTURE = "64-96-32-10"  # N_par = 9674, H = 128, N_par - H = 9546


def measure(n: int, threads: int, rank: bool, queue) -> None:
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from numerics import functional_dimension as F
    from numerics.functional_dimension import rank as rank_module
    from numerics.mlp import MLP

    torch.set_num_threads(threads)
    net = MLP.initialize(ARCHITECTURE, "he", 0)
    x = np.random.default_rng(0).standard_normal((n, net.arch.input_dim))
    F.jacobian_autodiff(net, x[:2])  # warm-up: torch.func's first call imports its compiler stack
    start = time.perf_counter()
    jac = F.jacobian_autodiff(net, x).numpy()
    t_autodiff = time.perf_counter() - start
    start = time.perf_counter()
    blocks = F.jacobian_blocks(net, x)
    t_blocks = time.perf_counter() - start
    step = 1000  # compare in row blocks: no full-size temporaries inflating the peak memory
    route_diff = max(float(np.abs(jac[i:i + step] - blocks[i:i + step]).max()) for i in range(0, len(jac), step))
    route_diff /= float(np.abs(jac).max())
    del blocks
    row = {"n": n, "rows": jac.shape[0], "cols": jac.shape[1], "autodiff_s": t_autodiff, "blocks_s": t_blocks,
           "route_diff": route_diff, "bound": net.arch.bound(n), "jac_mb": jac.nbytes / 2**20}
    with threadpool_limits(threads):
        start = time.perf_counter()
        certified = F.certified_rank(net, x)  # BFD without J or an SVD (from the states, included)
        row["certified_s"] = time.perf_counter() - start
    row["certified"] = "declined" if certified is None else certified.rank
    row["certified_gap"] = math.nan if certified is None else certified.gap_log10
    if not rank:
        row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(row)
        return
    with threadpool_limits(threads):
        rank_module.SINGLE_THREAD_ENTRIES = 0  # let the thread count asked for apply to every size
        start = time.perf_counter()
        svd = F.svd_rank(jac)
        t_svd = time.perf_counter() - start
        start = time.perf_counter()
        qr = F.pivoted_qr_rank(jac)
        t_qr = time.perf_counter() - start
    row.update(svd_rank=svd.rank, svd_s=t_svd, gap=svd.gap_log10, qr_rank=qr.rank, qr_s=t_qr,
               peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, nargs="+", default=[125, 250, 500, 1000])
    parser.add_argument("--threads", type=int, default=2, help="BLAS and torch threads (default 2)")
    parser.add_argument("--rank-max-inputs", type=int, default=None,
                        help="rank (SVD, QR) only for batches up to this size; larger ones time the Jacobian only")
    args = parser.parse_args()
    context = mp.get_context("spawn")
    print(f"architecture {ARCHITECTURE}, 10 outputs, Gaussian inputs, float64, BLAS threads {args.threads}")
    header = (f"{'n':>6} {'J shape':>13} {'bound':>6} {'J autodiff s':>12} {'J blocks s':>10} {'routes':>8} "
              f"{'cert rank':>9} {'cert s':>7} {'gap >=':>6} "
              f"{'SVD rank':>8} {'SVD s':>8} {'gap':>5} {'QR rank':>8} {'QR s':>8} {'J MB':>6} {'peak MB':>8}")
    print(header)
    print("-" * len(header))
    for n in args.inputs:
        queue = context.Queue()
        rank = args.rank_max_inputs is None or n <= args.rank_max_inputs
        worker = context.Process(target=measure, args=(n, args.threads, rank, queue))
        worker.start()
        row = queue.get()
        worker.join()
        ranks = (f"{row['svd_rank']:>8} {row['svd_s']:>8.1f} {row['gap']:>5.1f} {row['qr_rank']:>8} {row['qr_s']:>8.1f}"
                 if "svd_rank" in row else f"{'skipped':>8} {'':>8} {'':>5} {'skipped':>8} {'':>8}")
        print(f"{row['n']:>6} {row['rows']:>6}x{row['cols']:<6} {row['bound']:>6} {row['autodiff_s']:>12.2f} "
              f"{row['blocks_s']:>10.2f} {row['route_diff']:>8.0e} {row['certified']:>9} {row['certified_s']:>7.2f} "
              f"{row['certified_gap']:>6.1f} {ranks} {row['jac_mb']:>6.0f} {row['peak_mb']:>8.0f}",
              flush=True)


if __name__ == "__main__":
    main()
