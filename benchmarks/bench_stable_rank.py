"""Benchmark: the stable-rank family over 5 seeds (stable_rank.md, issue 14).

Table 1 times the GD of the ``stable-rank``/``margins`` batch of leaky ReLU 0.1 (setup A: n = 10,
d = 2000, m = 50, T = 5000; 5 seeds plus their P14 and P15 variants: 15 problems) three ways, all on
one thread:

* ``numpy batched`` -- :func:`numerics.stable_rank.train` with the 15 problems in one array (the
  path the checks use), including the bookkeeping on log-spaced steps;
* ``numpy reduced, loop`` -- the same reduced-coordinate algorithm as a plain numpy loop, one
  problem after the other;
* ``numpy full, loop`` -- a plain numpy loop on the full 100 x 2000 weights (the notes' reference).

Every variant reports the largest difference of its final per-class stable ranks from the batched
run (~1e-10 or below).  Table 2 does the same for the ``one-step-collapse`` batch of softplus (10
problems of (100, 50) pre-activations, 2000 steps) and times its matmul alone.  Table 3 runs the four
checks (quick profile: 5 seeds) per activation in a fresh process.  Target: the four checks for one activation under 20 s on 2 cores.

    python benchmarks/bench_stable_rank.py [--skip-checks] [ACTIVATION ...]

The machine is shared: the load average is printed before and after, and the ratios measured in one
run are the numbers to compare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", IBCHECK_PROGRESS="0")
STEPS = 5000
TARGET_S = 20.0

CHECKS_PROBE = r"""
import json, sys, time
import theory
from numerics.checks import Context, all_checks, get_check, run_check
all_checks()  # import every topic first: module import time is not the checks' time
act = theory.activation(sys.argv[1])
out = {}
for cid in ("stable-rank", "margins", "one-step-collapse", "rank-conditions"):
    t = time.perf_counter()
    r = run_check(get_check(cid), act, Context())
    out[cid] = [time.perf_counter() - t, r.verdict]
print(json.dumps(out))
"""


def training_table() -> None:
    import numpy as np
    import sympy as sp
    import torch
    from threadpoolctl import threadpool_limits

    import theory
    from numerics import stable_rank as S
    from numerics.stable_rank.experiments import KouSetup, record_steps
    from theory.rank import stable_rank

    torch.set_num_threads(1)
    act = theory.activation("leaky_relu", a=sp.Rational(1, 10))
    setup = KouSetup()
    start = time.perf_counter()
    exp = S.kou_experiment(act, setup)
    batched = time.perf_counter() - start
    runs = exp.runs + exp.low_dimension + exp.large_step
    problems = [r.problem for r in runs]
    reference = np.array([r.per_class[-1] for r in runs])
    sigma, dsigma = act.numeric("numpy"), act.numeric("numpy", 1)
    rows = [(f"numpy batched ({len(problems)} problems in one array, numerics.stable_rank.train)", batched, 0.0)]

    def per_class(w, a):
        return [stable_rank(w[a > 0]), stable_rank(w[a < 0])]

    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        finals = [per_class(w, p.a) for w, p in zip(plain_reduced_loop(act, problems, STEPS), problems)]
        rows.append(("numpy reduced, one problem after the other", time.perf_counter() - start,
                     float(np.abs(np.array(finals) - reference).max())))
        start, finals = time.perf_counter(), []
        for p in problems:
            x, y, a, eta, n = p.x, p.y, p.a, p.eta, p.n
            w = p.initial_weights()
            for _ in range(STEPS):
                q = y * (a @ sigma(w @ x.T))
                w += ((eta / n) * a[:, None] * dsigma(w @ x.T) * (y / (1 + np.exp(q)))) @ x
            finals.append(per_class(w, a))
        rows.append(("numpy full weights, one problem after the other", time.perf_counter() - start,
                     float(np.abs(np.array(finals) - reference).max())))
    print(f"stable-rank batch of leaky ReLU 0.1: {len(problems)} problems x {STEPS} steps "
          f"({len(record_steps(STEPS))} records), one thread")
    print(f"{'variant':<62} {'seconds':>8} {'x batched':>10}  max diff of per-class sr")
    for label, seconds, diff in rows:
        print(f"{label:<62} {seconds:>8.2f} {seconds / batched:>10.1f}  {diff:.1e}")


def plain_reduced_loop(act, problems, steps: int):
    """The reduced-coordinate GD (module docstring of numerics.stable_rank.model) as a plain numpy loop,
    one problem after the other, sigma and sigma' compiled separately: the reference for the batch."""
    import numpy as np

    sigma, dsigma = act.numeric("numpy"), act.numeric("numpy", 1)
    finals = []
    for p in problems:
        x, y, a, eta, n = p.x, p.y, p.a, p.eta, p.n
        w0 = p.initial_weights()
        gram, z, c = x @ x.T, w0 @ x.T, np.zeros((len(a), n))
        with np.errstate(all="ignore"):
            for _ in range(steps):
                q = y * (a @ sigma(z))
                update = (eta / n) * a[:, None] * dsigma(z) * (y / (1 + np.exp(q)))
                c += update
                z += update @ gram
        finals.append(w0 + c @ x)
    return finals


def frei_table(name: str = "softplus") -> None:
    """The ``one-step-collapse`` batch (5 seeds x small and default init, n = 50, d = 5000, m = 100,
    T = 2000): the batched trainer (sigma and sigma' in one compiled pass, torch's sin/cos/erf) against
    the plain loop, and the share of the step spent in its one matmul (the floor of this GD)."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    import theory
    from numerics.stable_rank.experiments import FreiSetup, frei_experiment
    from theory.rank import stable_rank

    torch.set_num_threads(1)
    act = theory.activation(name)
    setup = FreiSetup()
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        exp = frei_experiment.__wrapped__(act, setup)
        batched = time.perf_counter() - start
        runs = [r for pair in zip(exp.small, exp.default) for r in pair]
        start = time.perf_counter()
        finals = plain_reduced_loop(act, [r.problem for r in runs], setup.steps)
        plain = time.perf_counter() - start
        diff = max(abs(stable_rank(w) - r.full[-1]) / r.full[-1] for w, r in zip(finals, runs))
        update, gram = np.ones((len(runs), runs[0].problem.width, runs[0].problem.n)), np.stack(
            [r.problem.x @ r.problem.x.T for r in runs])
        start = time.perf_counter()
        for _ in range(setup.steps):
            np.matmul(update, gram)
        matmul = time.perf_counter() - start
    print(f"\none-step-collapse batch of {name}: {len(runs)} problems x {setup.steps} steps, one thread")
    print(f"{'variant':<62} {'seconds':>8} {'x batched':>10}")
    print(f"{'numpy batched (numerics.stable_rank.train, with records and ranks)':<62} {batched:>8.2f} {1:>10.1f}")
    print(f"{'numpy reduced, one problem after the other (no records)':<62} {plain:>8.2f} {plain / batched:>10.1f}")
    print(f"{'its matmul U G alone (the floor of the step)':<62} {matmul:>8.2f} {matmul / batched:>10.2f}")
    print(f"final full-matrix sr, batched vs plain: max relative difference {diff:.1e}")


def checks_table(names: list[str]) -> None:
    print(f"\nQuick-profile check runtimes per activation, 5 seeds (fresh process, seconds; stable-rank trains the "
          f"batch that margins reuses; target: total < {TARGET_S:g} s)")
    ids = ("stable-rank", "margins", "one-step-collapse", "rank-conditions")
    print(f"{'activation':<12} " + " ".join(f"{i:>20}" for i in ids) + f" {'total':>7}")
    for name in names:
        out = subprocess.run([sys.executable, "-c", CHECKS_PROBE, name], capture_output=True, text=True, env=ENV,
                             check=False)
        if out.returncode != 0:
            print(f"{name:<12} failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(out.stdout)
        cells = " ".join(f"{r[i][0]:>6.2f} {r[i][1][:13]:>13}" for i in ids)
        print(f"{name:<12} {cells} {sum(v[0] for v in r.values()):>7.2f}")


def main(argv: list[str]) -> int:
    skip = "--skip-checks" in argv
    names = [a for a in argv if not a.startswith("--")] or ["leaky_relu", "relu", "softplus", "elu", "silu", "gelu"]
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores; shared machine, timings under load are noisy)\n")
    training_table()
    frei_table()
    if not skip:
        checks_table(names)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.update(ENV)
    sys.exit(main(sys.argv[1:]))
