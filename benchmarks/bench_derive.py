"""Benchmark: cold and cached time of `derive` for every built-in activation.

Each activation runs in a fresh Python process (so nothing is cached): the script reports the
import time of `theory` (its public modules: sympy, the transform, kernels, parsing), the cold time of the theory-layer part (generalized Fourier transform
with its mpmath verification, spectral weight, null space, Radon operator, kernel: the
"Generalized Fourier transform and kernel-regime spectral penalty" section), the cold time of
the whole `theory.derive(act)` (adds the stable-rank and adaptive-regime sections), and the
time of a second, cached call.  Target (issue: theory layer): every built-in derives and
verifies in under 2 s cold on one core, judged on both the theory-layer part and the whole
derive.  Each activation is run ``--repeat`` times (default 3) in fresh processes and the
median is reported (single runs on a shared 2-core VM vary by about 20 %).

    python benchmarks/bench_derive.py [--repeat N] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import theory
import theory.derive, theory.gaussian_kernels, theory.parsing  # theory's names load on first use: import them here
t1 = time.perf_counter()
act = theory.activation(sys.argv[1])
derive_module = sys.modules["theory.derive"]
derive_module.spectral_section(act, 1, theory.fourier_transform(act))
t2 = time.perf_counter()
derivation = theory.derive(act)
t3 = time.perf_counter()
theory.derive(act)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "cold": t2 - t1, "all": t3 - t1, "cached": t4 - t3,
                  "status": derivation.status}))
"""

TARGET_S = 2.0


def _probe(name: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, name], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per activation (median)")
    parser.add_argument("names", nargs="*", help="activations (default: every built-in)")
    args = parser.parse_args(argv)
    names = args.names
    if not names:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import theory
        names = theory.builtin_names()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"{'activation':<12} {'status':<22} {'import s':>9} {'cold s':>8} {'all s':>7} {'cached s':>9}  "
          f"target: cold and all < {TARGET_S} s (median of {args.repeat})")
    slow = 0
    for name in names:
        try:
            runs = [_probe(name, env) for _ in range(args.repeat)]
        except RuntimeError as err:
            print(f"{name:<12} failed: {err}")
            slow += 1
            continue
        r = {key: statistics.median(run[key] for run in runs) for key in ("import", "cold", "all", "cached")}
        flag = "" if max(r["cold"], r["all"]) < TARGET_S else "  over target"
        slow += bool(flag)
        print(f"{name:<12} {runs[0]['status']:<22} {r['import']:>9.2f} {r['cold']:>8.2f} {r['all']:>7.2f} "
              f"{r['cached']:>9.4f}{flag}")
    print(f"\n{len(names) - slow} of {len(names)} under {TARGET_S} s cold, both the theory-layer part "
          "('cold') and the whole derive ('all')")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
