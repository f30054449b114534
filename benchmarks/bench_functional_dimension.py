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
    python benchmarks/bench_functional_dimension.py --paper            # the paper's scale (issue 16)
    python benchmarks/bench_functional_dimension.py --paper --gram-routes --eigh   # ... and the Gram-only routes
    python benchmarks/bench_functional_dimension.py --paper --paper-inputs 500     # a smaller n
    python benchmarks/bench_functional_dimension.py --paper --device cuda         # + the torch path on a GPU

``--paper``: the paper's network [784, 30, 30, 30, 10] (N_par = 25 720) at n = 2000 inputs (the
public script's N(0.5, 1) random inputs), a 20 000 x 25 720 Jacobian, ranked by ``projected_rank``
(what ``rank_method="auto"`` takes at this size on the CPU: a pivoted Cholesky of the row Gram
J J^T built from the blocks keeps the rows it proves independent, the others are projected off
their span on J itself, both sides of the cut proved).  ``--gram-routes`` adds the routes that
work on the Gram alone, ``certified_rank`` (one Cholesky) and ``pivoted_gram_rank`` (pivoted
Cholesky, one Cholesky of the kept block), and ``--eigh`` ``gram_eigen_rank`` (the symmetric
eigensolver): at this size all three decline or stay ill-determined (the Gram cannot resolve the
smallest singular values).  ``--device cuda`` also times ``certified_rank`` and ``gram_eigen_rank``
through torch in float64 on that device (the GPU path; its name is reported).  It reports the route's result (with the rows kept, projected and the
refinement steps), the flop count of each route, its wall and CPU seconds, the load average
before and after, and the fraction of this machine's peak measured in the same process (a 4000^3
DGEMM and a 6000^3 Cholesky, LAPACK dpotrf, on the same thread count), per wall second and per CPU
second: under load the wall rates fall with the machine's share, the CPU-second rates show how
well the cycles received were used.

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
    from numerics import functional_dimension as F
    from numerics import threads as T
    from numerics.mlp import MLP

    torch.set_num_threads(threads)
    T.configure(threads)  # the policy's thread count for large linear algebra
    T.LARGE_ENTRIES = 0  # let the thread count asked for apply to every size
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
    with T.large_work():
        start = time.perf_counter()
        certified = F.certified_rank(net, x)  # BFD without J or an SVD (from the states, included)
        row["certified_s"] = time.perf_counter() - start
    row["certified"] = "declined" if certified is None else certified.rank
    row["certified_gap"] = math.nan if certified is None else certified.gap_log10
    if not rank:
        row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(row)
        return
    with T.large_work():
        start = time.perf_counter()
        svd = F.svd_rank(jac)
        t_svd = time.perf_counter() - start
        start = time.perf_counter()
        qr = F.pivoted_qr_rank(jac)
        t_qr = time.perf_counter() - start
    row.update(svd_rank=svd.rank, svd_s=t_svd, gap=svd.gap_log10, qr_rank=qr.rank, qr_s=t_qr,
               peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put(row)


def timed(work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def machine_peak(threads: int) -> dict:
    """GFLOP/s of DGEMM (4000^3) and Cholesky (6000^3 / 3), best of 2, on ``threads`` BLAS threads,
    per wall second and per CPU second (the second is what a loaded machine leaves comparable)."""
    import numpy as np
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 4000))
    m = rng.standard_normal((6000, 6000))
    spd = m @ m.T + 6000 * np.eye(6000)
    out = {}
    with threadpool_limits(threads):
        for name, flop, work in (("gemm", 2 * 4000**3, lambda: a @ a),
                                 ("cholesky", 6000**3 / 3,
                                  lambda: scipy.linalg.lapack.dpotrf(spd, lower=1, clean=0, overwrite_a=0))):
            walls, cpus = zip(*(timed(work) for _ in range(2)))
            out[f"{name}_gflops"] = flop / min(walls) / 1e9
            out[f"{name}_cpu_gflops"] = flop / min(cpus) / 1e9
    return out


def paper_scale(threads: int, gram_routes: bool, eigh: bool, n: int, device: str | None, queue) -> None:
    """The paper-scale rank (module docstring), in a fresh process."""
    import os

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from numerics import functional_dimension as F
    from numerics import threads as T
    from numerics.mlp import MLP

    torch.set_num_threads(threads)
    T.configure(threads)  # the policy's thread count for large linear algebra
    row = {"load_before": os.getloadavg()}
    row.update(machine_peak(threads))
    net = MLP.initialize("784-30-30-30-10", "glorot", 0)
    x = np.random.default_rng(0).normal(0.5, 1.0, (n, 784))
    q, p = n * 10, net.arch.n_parameters
    # flop: the row Gram (per layer (n N_L) x N_l times its transpose) + 12 power steps
    gram_flop = sum(2 * q * q * w for w in net.arch.widths[1:]) + 12 * 2 * q * q
    row["bound"] = net.arch.bound(n)
    routes = [("projected_rank", F.projected_rank)]
    if gram_routes:
        routes += [("certified_rank", F.certified_rank), ("pivoted_gram_rank", F.pivoted_gram_rank)]
    if eigh:
        routes.append(("gram_eigen_rank", F.gram_eigen_rank))
    if device is not None:  # the torch path (certificate's Cholesky, eigensolver) on that device, float64
        row["device"] = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device
        routes = [(name, route) for name, route in routes if name not in ("certified_rank", "gram_eigen_rank")]
        routes += [("certified_rank", lambda net, x: F.certified_rank(net, x, device=device)),
                   ("gram_eigen_rank", lambda net, x: F.gram_eigen_rank(net, x, device=device))]
    results = {}
    for name, route in routes:
        with threadpool_limits(threads):
            row[f"{name}_s"], row[f"{name}_cpu"] = timed(lambda: results.__setitem__(name, route(net, x)))
    evidence = results["projected_rank"].evidence if results.get("projected_rank") is not None else None
    if evidence is not None:
        k, rest, steps = evidence["kept"], evidence["projected"], evidence["refinement_steps"]
        # dpstrf to step k; J; per refinement step two products with J and two triangular solves, plus
        # the first solve, |J|^T|C| and the two small SVDs (residual p x rest, coefficients k x rest)
        row["projected_rank_flop"] = (gram_flop + (q**3 - (q - k) ** 3) / 3 + q * p
                                      + (steps + 1) * (4 * q * p * rest + 4 * k * k * rest) + 2 * q * p * rest
                                      + 4 * p * rest**2 + 4 * k * rest**2)
        row["projected_evidence"] = {"kept": k, "projected": rest, "refinement_steps": steps}
    row["certified_rank_flop"] = gram_flop + q**3 / 3
    if "pivoted_gram_rank" in results:
        r = results["pivoted_gram_rank"].rank if results["pivoted_gram_rank"] is not None else q
        # dpstrf to step r, the trailing Schur complement, one Cholesky of the kept block
        row["pivoted_gram_rank_flop"] = gram_flop + (q**3 - (q - r) ** 3) / 3 + (q - r) ** 2 * r + r**3 / 3
    if "gram_eigen_rank" in results:
        row["gram_eigen_rank_flop"] = gram_flop + 4 / 3 * q**3  # tridiagonalization dominates (eigenvalues only)
    row["results"] = {name: (None if rank is None else rank.summary()) for name, rank in results.items()}
    row["load_after"] = os.getloadavg()
    row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(row)


def report_paper_scale(threads: int, gram_routes: bool, eigh: bool, n: int, device: str | None) -> None:
    context = mp.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=paper_scale, args=(threads, gram_routes, eigh, n, device, queue))
    worker.start()
    row = queue.get()
    worker.join()
    print(f"784-30-30-30-10, n = {n} N(0.5, 1) inputs, J {10 * n} x 25720, bound {row['bound']}, "
          f"BLAS threads {threads}, load average {row['load_before'][0]:.1f} before, {row['load_after'][0]:.1f} after"
          + (f"; torch device {row['device']} for certified_rank and gram_eigen_rank" if "device" in row else ""))
    print(f"machine peak: DGEMM {row['gemm_gflops']:.1f} GFLOP/s ({row['gemm_cpu_gflops']:.1f} per CPU second), "
          f"Cholesky {row['cholesky_gflops']:.1f} ({row['cholesky_cpu_gflops']:.1f} per CPU second)")
    for name in ("projected_rank", "certified_rank", "pivoted_gram_rank", "gram_eigen_rank"):
        if f"{name}_s" not in row:
            continue
        result = row["results"][name]
        found = "declined" if result is None else (f"rank {result['rank']} (proved gap {result['gap_log10']:.2f} "
                                                   f"decades, tolerance {result['tolerance'] / result['s_max']:.1e} s_max)")
        if name == "projected_rank" and "projected_evidence" in row:
            found += " kept {kept}, projected {projected}, refinement steps {refinement_steps}".format(
                **row["projected_evidence"])
        if f"{name}_flop" not in row:
            print(f"{name}: {found}, {row[f'{name}_s']:.1f} s wall, {row[f'{name}_cpu']:.1f} s CPU")
            continue
        flop = row[f"{name}_flop"]
        wall, cpu = flop / row[f"{name}_s"] / 1e9, flop / row[f"{name}_cpu"] / 1e9
        print(f"{name}: {found}, {row[f'{name}_s']:.1f} s wall, {row[f'{name}_cpu']:.1f} s CPU, {flop:.3g} flop: "
              f"{wall:.1f} GFLOP/s wall = {wall / row['cholesky_gflops']:.0%} of Cholesky, "
              f"{wall / row['gemm_gflops']:.0%} of DGEMM; per CPU second {cpu:.1f} = "
              f"{cpu / row['cholesky_cpu_gflops']:.0%} of Cholesky, {cpu / row['gemm_cpu_gflops']:.0%} of DGEMM")
    print(f"peak resident memory {row['peak_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, nargs="+", default=[125, 250, 500, 1000])
    parser.add_argument("--threads", type=int, default=2, help="BLAS and torch threads (default 2)")
    parser.add_argument("--rank-max-inputs", type=int, default=None,
                        help="rank (SVD, QR) only for batches up to this size; larger ones time the Jacobian only")
    parser.add_argument("--paper", action="store_true", help="the paper-scale rank instead (784-30-30-30-10, n = 2000)")
    parser.add_argument("--gram-routes", action="store_true",
                        help="with --paper: also the certificate and the pivoted Gram route (both decline there)")
    parser.add_argument("--eigh", action="store_true", help="with --paper: also the Gram eigensolver route")
    parser.add_argument("--device", default=None,
                        help="with --paper: also run the certificate and the eigensolver with torch on this device "
                             "(e.g. cuda; float64), the path fd-training's device option takes")
    parser.add_argument("--paper-inputs", type=int, default=2000, help="with --paper: n (default 2000, the paper's)")
    args = parser.parse_args()
    if args.paper:
        report_paper_scale(args.threads, args.gram_routes, args.eigh, args.paper_inputs, args.device)
        return
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
