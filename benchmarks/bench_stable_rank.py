"""Benchmark: setup A of stable_rank.md (n = 10, d = 2000, m = 50, 5000 GD steps, leaky ReLU 0.1),
and the quick-profile runtime of the four rank/margin checks per activation.

Table 1 times the same training run four ways, all on one thread:

* ``torch reduced`` -- :func:`numerics.stable_rank.train` (W = W0 + C X, the path the checks use),
  including the stable-rank bookkeeping on log-spaced steps;
* ``numpy reduced`` -- the same algorithm as a plain numpy loop;
* ``numpy full`` -- the plain numpy loop on the full 100 x 2000 weights (the notes' reference runs);
* ``torch autograd`` -- numerics.training.gradient_descent on the full weights.

Every variant uses the activation compiled from its sympy expression (numpy or torch backend)
and reports its final per-class stable ranks, which must agree to ~1e-10.  Target: torch reduced
< 3 s and no slower than numpy full.

Table 2 runs ``stable-rank``, ``margins``, ``one-step-collapse`` and ``rank-conditions`` (quick
profile, seed 0) per activation in a fresh process, in this order: ``stable-rank`` also pays the
activation's one-time symbolic work (sigma' pieces, slopes, barrier, flow time) and trains the
setup-A batch that ``margins`` then reuses (in the suite they may run in different processes).
Target: ~2-3 s per check per activation.

    python benchmarks/bench_stable_rank.py [--skip-checks] [ACTIVATION ...]

The machine is shared: the load average is printed, and timings under load are noisy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", IBCHECK_PROGRESS="0")
STEPS = 5000
TARGET_S = 3.0

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


def training_table() -> bool:
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    import theory
    from numerics import stable_rank as S
    from numerics.torch_activation import torch_activation
    from numerics.training import gradient_descent
    from theory.rank import stable_rank

    torch.set_num_threads(1)
    act = theory.activation("leaky_relu")
    problem = S.setup_a(0)
    x, y, a, eta = problem.x, problem.y, problem.a, problem.eta
    n, pos = len(y), a > 0
    sigma, dsigma = act.numeric("numpy"), act.numeric("numpy", 1)

    def per_class(w):
        return [stable_rank(w[pos]), stable_rank(w[~pos])]

    rows = []
    start = time.perf_counter()
    run = S.train(act, [problem], STEPS)[0]
    rows.append(("torch reduced (numerics.stable_rank.train)", time.perf_counter() - start, run.per_class[-1]))

    with threadpool_limits(limits=1, user_api="blas"):
        w0 = problem.initial_weights()
        start = time.perf_counter()
        gram, z, c = x @ x.T, w0 @ x.T, np.zeros((len(a), n))
        for _ in range(STEPS):
            q = y * (a @ sigma(z))
            update = (eta / n) * a[:, None] * dsigma(z) * (y / (1 + np.exp(q)))
            c += update
            z += update @ gram
        rows.append(("numpy reduced (same algorithm)", time.perf_counter() - start, per_class(w0 + c @ x)))

        start = time.perf_counter()
        w = w0.copy()
        for _ in range(STEPS):
            z = w @ x.T
            q = y * (a @ sigma(z))
            w += ((eta / n) * a[:, None] * dsigma(z) * (y / (1 + np.exp(q)))) @ x
        rows.append(("numpy full weights (plain loop)", time.perf_counter() - start, per_class(w)))

    wt = torch.tensor(w0, requires_grad=True)
    xt, yt, at = torch.tensor(x), torch.tensor(y), torch.tensor(a)
    sig_t = torch_activation(act)
    start = time.perf_counter()
    gradient_descent([wt], lambda: torch.nn.functional.softplus(-yt * (sig_t(wt @ xt.T).T @ at)).mean(), STEPS, eta,
                     record_steps=[STEPS])
    rows.append(("torch autograd, full weights (numerics.training)", time.perf_counter() - start,
                 per_class(wt.detach().numpy())))

    reference = np.asarray(rows[0][2])
    print(f"Setup A, leaky ReLU 0.1, {STEPS} steps, one thread (target: torch reduced < {TARGET_S} s)")
    print(f"{'variant':<50} {'seconds':>8} {'us/step':>8}  per-class sr (+1, -1)   max diff")
    for label, seconds, sr in rows:
        diff = np.max(np.abs(np.asarray(sr) - reference))
        print(f"{label:<50} {seconds:>8.2f} {seconds / STEPS * 1e6:>8.0f}  {sr[0]:.8f} {sr[1]:.8f}   {diff:.1e}")
    fast = rows[0][1] < TARGET_S and rows[0][1] <= rows[2][1]
    print("torch reduced:", "within target and no slower than the plain numpy loop" if fast else "OVER TARGET")
    return fast


def checks_table(names: list[str]) -> None:
    print("\nQuick-profile check runtimes per activation (fresh process, seconds; stable-rank includes the "
          "one-time symbolic work and the setup-A batch that margins reuses)")
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
    ok = training_table()
    if not skip:
        checks_table(names)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.update(ENV)
    sys.exit(main(sys.argv[1:]))
