"""Benchmark of the adaptive-regime training (run: ``python benchmarks/bench_adaptive.py``).

The reference run of spectral_bias.md E7/E8: a ReLU network of width 200 in the adaptive
initialization (v ~ N(0, 1), w, b ~ N(0, 0.05^2)) on the 1D toy data, 1e5 full-batch GD steps
at E7's step size (target: under 60 s on 2 cores), in steps per second, with the pinned
fraction it reaches.  For comparison:

* the same network taped through autograd (``ShallowNetwork`` + ``gradient_descent``), the
  straightforward implementation, on fewer steps;
* the packed :class:`numerics.adaptive.Ensemble` with 3 and 6 members (E7's 3 seeds plus the
  kernel contrast), which costs little more per step than one network;
* the bare per-step overhead of ``gradient_descent`` on one small tensor (the floor).

Options: ``--steps`` (default 100000), ``--threads`` (default 1; tiny tensors gain nothing
from more).  Timings on a shared machine are noisy: run it twice.
"""

from __future__ import annotations

import argparse
import time

import torch

import theory
from numerics.adaptive import ADAPTIVE, KERNEL, Ensemble, pinned_fraction
from numerics.data import toy_1d
from numerics.networks import ShallowNetwork, as_tensor
from numerics.training import gradient_descent


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    act = theory.activation("relu")
    x, y = toy_1d()
    rows = []

    ens = Ensemble(act, x, y, 200, [(ADAPTIVE, 0)])
    seconds, traj = timed(lambda: ens.train(args.steps, [0, args.steps]))
    rows.append(("E7 run, packed closed-form gradient", 1, args.steps, seconds,
                 f"pinned {pinned_fraction(traj.states[0, 0], x):.2f} -> {pinned_fraction(traj.states[-1, 0], x):.2f}, "
                 f"loss {0.5 * (traj.residuals[-1, 0] ** 2).mean():.1e}"))

    short = max(args.steps // 10, 1000)
    net = ShallowNetwork(act, 200, 1, ADAPTIVE.init(), seed=0)
    X, Y = as_tensor(x), torch.as_tensor(y)
    seconds, _ = timed(lambda: gradient_descent(net.parameters, lambda: 0.5 * ((net(X) - Y) ** 2).mean(), short,
                                                ADAPTIVE.learning_rate(200), record_steps=[0]))
    rows.append(("same network, taped autograd", 1, short, seconds, ""))

    for members in ([(ADAPTIVE, s) for s in range(3)],
                    [(ADAPTIVE, s) for s in range(3)] + [(KERNEL, s) for s in range(3)]):
        ens = Ensemble(act, x, y, 200, members)
        seconds, _ = timed(lambda: ens.train(short, [0, short]))
        rows.append((f"ensemble of {len(members)} networks", len(members), short, seconds, ""))

    p = torch.zeros(600, dtype=torch.float64, requires_grad=True)
    seconds, _ = timed(lambda: gradient_descent([p], lambda: (p * p).sum(), short, 0.1, record_steps=[0]))
    rows.append(("gradient_descent floor (one 600-vector)", 1, short, seconds, ""))

    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'what':<42} {'nets':>4} {'steps':>8} {'seconds':>8} {'steps/s':>9} {'net-steps/s':>11}  note")
    for what, nets, steps, seconds, note in rows:
        print(f"{what:<42} {nets:>4} {steps:>8} {seconds:>8.2f} {steps / seconds:>9.0f} "
              f"{nets * steps / seconds:>11.0f}  {note}")


if __name__ == "__main__":
    main()
