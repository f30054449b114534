r"""Stable rank and margins of two-layer networks on nearly-orthogonal data, measured (stable_rank.md).

**Models** (notes Sec. 1): :math:`f(x) = \sum_r a_r\,\sigma(\langle w_r, x\rangle)` with a fixed
second layer, logistic loss :math:`L = \frac1n\sum_i \log(1+e^{-q_i})`, :math:`q_i = y_if(x_i)`,
full-batch GD with step :math:`\eta`, :math:`w_r^0 \sim N(0, \sigma_0^2 I)`, numpy float64.

* Kou et al.: m neurons per class, :math:`a_r = j_r/m`, :math:`j_r = \pm1` (:func:`kou_layer`);
* Frei et al.: m neurons, :math:`a_r = \pm 1/\sqrt m` at random (:func:`frei_layer`).

**Reduced coordinates.**  Every gradient lies in the row span of the data, so
:math:`W^t = W^0 + C^t X` exactly and GD only moves the :math:`M\times n` coefficients C:

.. math:: Z^t = W^tX^T = Z^0 + C^tG,\qquad
   C^{t+1} = C^t + \frac{\eta}{n}\,a\,[\sigma'(Z^t)\odot (y\,|\ell'(q^t)|)^T],\qquad G = XX^T.

A step costs O(Mn^2) instead of O(Mnd) (d = 2000: ~100x less), and
:math:`W W^T = W^0W^{0T} + CZ^{0T} + Z^0C^T + CGC^T` gives every stable rank without forming W.
The loop is checked against autograd on the full weights (``tests/test_stable_rank.py``).
Several problems with the same n and M train as one batch: one numpy op per step for all seeds
(numpy, not torch: at these sizes, (B, 100, 10) arrays, torch's per-operation overhead made the same
batched loop ~5x slower, ``benchmarks/bench_stable_rank.py``; only the update's two broadcast products,
where numpy loops over n-element rows, run on torch views of the numpy buffers).  Problems on the same
data (the two inits of a Frei seed) form their z-update as one taller product (:func:`same_data_block`);
where :math:`\sigma(z) = z\,\sigma'(z)` (ReLU, leaky ReLU, |z|) a step evaluates the slope alone
(:func:`activation_and_slope`); both give the same numbers.
Stable ranks and Grams of the records are formed on first use.

**Tracking** on log-spaced steps: per-class and full-matrix stable rank, loss, margins,
activation-pattern changes (pairs whose sign of Z
changed, compared step to step), and the never-activated fraction of own-class (neuron, sample) pairs.

The experiments built on this trainer are in :mod:`.experiments`, the claims they test in
:mod:`.claims` (``docs/stable_rank.md``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np
import torch
from scipy.special import expit

from theory import rank
from theory.activations import Activation
from theory.errors import IbcheckError

from ..data import digits, gaussian_classes, near_orthogonality, orthogonal_classes
from ..progress import progress
from ..reproducibility import generators
from ..threads import single_threaded
from ..torch_activation import ARRAYS, sigma_and_slope
from ..training import TrainingDiverged, full_shape, log_spaced_steps, slope_times_input

F64 = torch.float64
#: |<w, x>| beyond this counts as divergence (as numerics.training's max_abs on weights)
MAX_PRE_ACTIVATION = 1e12


# ---------------------------------------------------------------------------------------
# problems

def kou_layer(m: int) -> np.ndarray:
    """Second layer of the Kou model: m neurons with +1/m, then m with -1/m."""
    return np.concatenate([np.full(m, 1.0 / m), np.full(m, -1.0 / m)])


def frei_layer(m: int, rng: np.random.Generator) -> np.ndarray:
    """Second layer of the Frei model: m neurons with independent random signs +-1/sqrt(m)."""
    return rng.choice([-1.0, 1.0], size=m) / math.sqrt(m)


@dataclass(frozen=True, eq=False)
class Problem:
    """One training problem: data (x, y), fixed second layer a, init scale sigma0, step eta, seed."""

    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    sigma0: float
    eta: float
    seed: int
    label: str = ""

    def __post_init__(self):
        if self.x.ndim != 2 or len(self.x) != len(self.y):
            raise IbcheckError(f"{self.label}: x must be (n, d) and y (n,), got {self.x.shape} and {self.y.shape}")
        if not set(np.unique(self.y)) <= {-1.0, 1.0}:
            raise IbcheckError(f"{self.label}: labels must be +1 or -1")
        if not (self.sigma0 > 0 and self.eta > 0):
            raise IbcheckError(f"{self.label}: sigma0 and eta must be positive")

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def width(self) -> int:
        """Total number of neurons M."""
        return len(self.a)

    @property
    def parameters(self) -> dict:
        return {"n": self.n, "d": self.x.shape[1], "neurons": self.width, "sigma0": self.sigma0, "eta": self.eta,
                "seed": self.seed, "near_orthogonality": near_orthogonality(self.x),
                "init_scale_v": self.init_scale}

    @property
    def init_scale(self) -> float:
        r""":math:`v = \sigma_0\,\mathrm{rms}\|x_i\|`: the standard deviation of an initial pre-activation."""
        return float(self.sigma0 * np.sqrt((self.x**2).sum(axis=1).mean()))

    def initial_weights(self) -> np.ndarray:
        """W^0 (M x d), drawn from the problem's seed: sigma0 times :func:`standard_init`."""
        return standard_init(self.seed, self.width, self.x.shape[1]) * self.sigma0


@lru_cache(maxsize=16)
def standard_init(seed: int, width: int, d: int) -> np.ndarray:
    """The N(0, 1) draw behind W^0 (read-only): one per seed and size, shared by the inits of one seed
    (small and default in the Frei batch, the P15 variant in the Kou batch) and by every activation a
    process checks.  sigma0 times it equals drawing W^0 directly (one rounding either way)."""
    _, gen = generators(seed)
    draw = torch.randn(width, d, generator=gen, dtype=F64).numpy()
    draw.flags.writeable = False
    return draw


@lru_cache(maxsize=16)
def standard_init_gram(seed: int, width: int, d: int) -> np.ndarray:
    """:math:`NN^T` of :func:`standard_init` (read-only): W^0 W^0T is sigma0^2 times it."""
    gram = standard_init(seed, width, d) @ standard_init(seed, width, d).T
    gram.flags.writeable = False
    return gram


#: the data sets of the ``data`` option
DATA_KINDS = ("gaussian", "orthogonal", "digits")


@lru_cache(maxsize=32)
def draw_data(kind: str, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    r"""n inputs with balanced labels +-1 (first half +1), read-only (remembered: every activation a
    process checks trains on the same draws):

    * ``gaussian``: :math:`x_i \sim N(0, I_d)`, so :math:`E\|x_i\|^2 = d`;
    * ``orthogonal``: :math:`x_i = \sqrt d\,e_i` (exactly orthogonal, :math:`\|x_i\|^2 = d`; the
      Gaussian init is rotation invariant, so any orthonormal basis gives the same distribution);
    * ``digits``: scikit-learn digits 0 (+1) vs 1 (-1), 64 pixels / 16 (``d`` is ignored).
    """
    if kind == "gaussian":
        x, y = gaussian_classes(n, d, seed)
    elif kind == "orthogonal":
        x, y = orthogonal_classes(n, d)
    elif kind == "digits":
        x, labels = digits((0, 1), n, seed)
        y = np.where(labels == 0, 1.0, -1.0)
    else:
        raise IbcheckError(f"unknown data {kind!r}; known: {', '.join(DATA_KINDS)}")
    x.flags.writeable = y.flags.writeable = False
    return x, y


def setup_a(seed: int = 0, n: int = 10, d: int = 2000, m: int = 50, sigma0: float = 1e-3,
            eta: float | None = None) -> Problem:
    """Setup A of the notes (Sec. 4.2): x_i ~ N(0, I_d), balanced labels, Kou model, eta = nm/d (c ~ 1)."""
    x, y = gaussian_classes(n, d, seed)
    return Problem(x, y, kou_layer(m), sigma0, n * m / d if eta is None else eta, seed,
                   f"setup A (n={n}, d={d}, m={m})")


def orthogonal_setup(act: Activation, seed: int = 0, n: int = 20, d: int = 2000, m: int = 50, v: float = 0.045,
                     c: float = 0.1) -> Problem:
    r"""Exactly orthogonal data :math:`x_i = \sqrt d e_i`, init scale :math:`v = \sigma_0\sqrt d`, and
    :math:`\eta = c\,nm/(K_{same}d)` so that :math:`c = \eta K_{same}R^2/(nm)` (notes Sec. 2.4)."""
    x, y = draw_data("orthogonal", n, d, seed)
    k_same = float(rank.margin_kernel_factors(act)[0])
    return Problem(x, y, kou_layer(m), v / math.sqrt(d), c * n * m / (k_same * d), seed,
                   f"orthogonal (n={n}, d={d}, m={m}, v={v:g}, c={c:g})")


def frei_setup(seed: int = 0, n: int = 50, d: int = 5000, m: int = 100, omega_sqrt_d: float = 1e-4,
               eta: float | None = None, data: str = "gaussian") -> Problem:
    """P11/P12: Frei model (random signs +-1/sqrt(m)), init omega = omega_sqrt_d / sqrt(d), eta = n/d."""
    x, y = draw_data(data, n, d, seed)
    rng, _ = generators(seed + 7919)
    return Problem(x, y, frei_layer(m, rng), omega_sqrt_d / math.sqrt(d), n / d if eta is None else eta, seed,
                   f"Frei (n={n}, d={d}, m={m}, omega*sqrt(d)={omega_sqrt_d:g})")


# ---------------------------------------------------------------------------------------
# training

@dataclass
class Run:
    """What :func:`train` recorded for one problem (arrays indexed by record)."""

    problem: Problem
    steps: np.ndarray
    loss: np.ndarray
    margins: np.ndarray          # (R, n)
    coefficients: np.ndarray     # (R, M, n): W^t = W^0 + C^t X
    pattern_changes: np.ndarray | None  # (R, M): per neuron, samples whose sign of Z changed since the previous
    never_activated: np.ndarray | None  # record; (R,): own-class pairs never positive so far (None: not tracked)
    z0: np.ndarray               # (M, n)
    init_gram: np.ndarray        # (M, M): W^0 W^0T
    runtime_s: float = 0.0

    @cached_property
    def gram(self) -> np.ndarray:
        """(R, M, M): W^t W^tT in reduced coordinates (module docstring)."""
        return self._gram(self.coefficients)

    def _gram(self, c: np.ndarray) -> np.ndarray:
        r"""(R, M, M) from coefficients (R, M, n): :math:`W^0W^{0T} + CZ^{0T} + Z^0C^T + CGC^T
        = W^0W^{0T} + H + H^T` with :math:`H = C(Z^0 + \tfrac12 CG)^T` (one (M, n) x (n, M) product
        per record instead of two; exactly symmetric)."""
        g = self.problem.x @ self.problem.x.T
        half = c @ g
        half *= 0.5
        half += self.z0[None]
        h = c @ np.swapaxes(half, 1, 2)
        total = self.init_gram[None] + h
        total += np.swapaxes(h, 1, 2)
        return total

    def _class_ranks(self, gram: np.ndarray) -> np.ndarray:
        """(R, 2) from Grams (R, M, M): the stable ranks of the rows with a > 0 and with a < 0."""
        pos, neg = self.problem.a > 0, self.problem.a < 0
        return np.stack([rank.gram_stable_rank(gram[:, pos][:, :, pos]),
                         rank.gram_stable_rank(gram[:, neg][:, :, neg])], 1)

    @cached_property
    def per_class(self) -> np.ndarray:
        """(R, 2): stable rank of the neurons with a > 0 and with a < 0."""
        return self._class_ranks(self.gram)

    def per_class_at(self, index: int) -> np.ndarray:
        """(2,): :attr:`per_class` at record ``index`` alone (the P14/P15 controls read only T: the
        Grams and eigenvalues of the other records are not formed)."""
        return self._class_ranks(self._gram(self.coefficients[[index]]))[0]

    @cached_property
    def full(self) -> np.ndarray:
        """(R,): stable rank of the whole first layer."""
        return rank.gram_stable_rank(self.gram)

    @property
    def own(self) -> np.ndarray:
        """(M, n): pair (r, i) is own-class when sign(a_r) = y_i."""
        return np.sign(self.problem.a)[:, None] == self.problem.y[None, :]

    def at(self, step: int) -> int:
        """Index of the record at ``step``."""
        hits = np.nonzero(self.steps == step)[0]
        if not len(hits):
            raise IbcheckError(f"step {step} was not recorded")
        return int(hits[0])

    @property
    def final_pre_activations(self) -> np.ndarray:
        """(M, n): Z at the last record."""
        return self.z0 + self.coefficients[-1] @ (self.problem.x @ self.problem.x.T)

    def update_gram(self, start: int, end: int = -1) -> np.ndarray:
        """(M, M): the Gram matrix of :math:`W^{end} - W^{start}` (record indices), :math:`DGD^T` with
        :math:`D = C^{end} - C^{start}`: its stable rank without forming the M x d difference."""
        delta = self.coefficients[end] - self.coefficients[start]
        return delta @ (self.problem.x @ self.problem.x.T) @ delta.T

    def weights(self, index: int = -1) -> np.ndarray:
        """The first layer W at record ``index``."""
        return self.problem.initial_weights() + self.coefficients[index] @ self.problem.x

    def _tracked_changes(self) -> np.ndarray:
        if self.pattern_changes is None:
            raise IbcheckError(f"{self.problem.label}: trained without tracking the activation pattern")
        return self.pattern_changes

    def changes_after(self, step: int) -> list[int]:
        """Per class (+1, -1): pattern changes recorded after ``step`` (pairs that flipped sign)."""
        late = self._tracked_changes()[self.steps > step]
        return [int(late[:, np.sign(self.problem.a) == j].sum()) for j in (1.0, -1.0)]

    def last_change(self) -> int | None:
        """The record step by which the last activation-pattern change had happened (None: never changed)."""
        changed = np.nonzero(self._tracked_changes().sum(axis=1) > 0)[0]
        return int(self.steps[changed[-1]]) if len(changed) else None


@single_threaded
def train(act: Activation, problems: list[Problem], steps: int, record_steps=None,
          describe: str = "two-layer GD", track_patterns: bool = True) -> list[Run]:
    r"""Full-batch GD on every problem at once (reduced coordinates, module docstring).

    All problems need the same n and M.  ``record_steps`` defaults to 10 log-spaced steps per
    decade plus ``steps/2``.  ``track_patterns`` off: no activation-pattern bookkeeping (four
    boolean passes per step; ``pattern_changes`` and ``never_activated`` are None).  Raises
    :class:`TrainingDiverged` on a non-finite margin or coefficient, or a pre-activation above
    :data:`MAX_PRE_ACTIVATION` (checked every 128 steps and at every record).
    """
    if not problems:
        return []
    n, width = problems[0].n, problems[0].width
    if any(p.n != n or p.width != width for p in problems):
        raise IbcheckError("problems trained together need the same number of samples and neurons")
    wanted = sorted(set(record_steps if record_steps is not None else
                        log_spaced_steps(steps, 10) + [steps // 2]) | {0, steps})
    evaluate = activation_and_slope(act)

    start = time.perf_counter()
    # Z^0 = sigma0 N X^T and W^0 W^0T = sigma0^2 N N^T from the N(0, 1) draw N: the inits of one seed
    # (same data) share N X^T, every activation shares N N^T; rounding apart, (sigma0 N) X^T
    unit_z: dict = {}
    for p in problems:
        unit_z.setdefault((p.seed, p.width, id(p.x)), standard_init(p.seed, p.width, p.x.shape[1]) @ p.x.T)
    block = same_data_block(problems)
    gram = np.stack([p.x @ p.x.T for p in problems[::block]])                      # one G per block
    z = np.stack([p.sigma0 * unit_z[p.seed, p.width, id(p.x)] for p in problems])
    z0 = z.copy()
    init_gram = np.stack([p.sigma0**2 * standard_init_gram(p.seed, p.width, p.x.shape[1]) for p in problems])
    del unit_z
    y = np.stack([p.y for p in problems])[:, None, :]                                # (B, 1, n)
    a_row = np.stack([p.a for p in problems])[:, None, :]                            # (B, 1, M)
    a_col = np.swapaxes(a_row, 1, 2)
    rate = np.array([p.eta / n for p in problems])[:, None, None] * a_col
    own = np.sign(a_col) == y                                                        # (B, M, n)
    # buffers, written in place every step
    coeff, update, dz = np.zeros_like(z), np.empty_like(z), np.empty_like(z)
    # views with the problems of one block stacked: dz = U G as one (block M, n) x (n, n) product each
    update_rows, dz_rows = (a.reshape(len(problems) // block, block * width, n) for a in (update, dz))
    q, weight = np.empty_like(y), np.empty_like(y)
    # the update's two broadcast products run on torch views of these buffers: numpy loops over the
    # n-element rows one at a time (~35 us each on the (10, 100, 50) Frei batch), torch's broadcasting
    # kernel takes ~15 us; the same IEEE products in the same order, so the same numbers
    update_t, weight_t, rate_t = torch.from_numpy(update), torch.from_numpy(weight), torch.from_numpy(rate)
    active, now, flipped = z > 0, np.empty(z.shape, dtype=bool), np.empty(z.shape, dtype=bool)
    ever, changed = active.copy(), np.zeros_like(active)
    rec = {"q": [], "c": [], "changes": [], "never": []}
    # the steps where anything but the GD step happens: records, divergence checks, the progress bar
    recorded = set(wanted)
    events = recorded | set(range(0, steps + 1, 128)) | set(range(0, steps + 1, 100))
    with np.errstate(all="ignore"), progress(steps, describe, unit="step") as bar:
        for step in range(steps + 1):
            sigma, slope = evaluate(z)
            np.matmul(a_row, full_shape(sigma, z), out=q)
            np.multiply(q, y, out=q)                                                 # margins (B, 1, n)
            if step in events:
                if not (np.isfinite(q).all() and np.isfinite(coeff).all()):
                    raise TrainingDiverged(f"{describe}: {act.label} diverged at step {step} (non-finite margins)")
                if np.abs(z).max() > MAX_PRE_ACTIVATION:
                    raise TrainingDiverged(f"{describe}: {act.label} diverged at step {step} (pre-activations "
                                           f"above {MAX_PRE_ACTIVATION:g}); use a smaller step size")
                if step in recorded:
                    rec["q"].append(q[:, 0].copy())
                    rec["c"].append(coeff.copy())
                    if track_patterns:
                        rec["changes"].append(changed.sum(2))
                        changed[:] = False
                        rec["never"].append((own & ~ever).sum((1, 2)) / own.sum((1, 2)))
                if step == steps:
                    break
                if step % 100 == 0:
                    bar.update(min(100, steps - bar.n))
            np.negative(q, out=weight)
            expit(weight, out=weight)
            np.multiply(weight, y, out=weight)                                       # y |l'(q)|
            slope_t = torch.as_tensor(slope, dtype=F64).expand_as(update_t)      # a constant slope (a
            torch.mul(slope_t, weight_t, out=update_t)                         # linear piece) broadcast
            update_t.mul_(rate_t)
            coeff += update
            np.matmul(update_rows, gram, out=dz_rows)
            z += dz
            if track_patterns:
                np.greater(z, 0, out=now)
                np.not_equal(now, active, out=flipped)
                changed |= flipped
                ever |= now
                active, now = now, active
    runtime = (time.perf_counter() - start) / len(problems)
    margins, coefficients = np.stack(rec["q"], 1), np.stack(rec["c"], 1)
    changes, never = (np.stack(rec[k], 1) if track_patterns else [None] * len(problems) for k in ("changes", "never"))
    steps_arr = np.array(wanted)
    runs = []
    for b, p in enumerate(problems):
        loss = np.logaddexp(0.0, -margins[b]).mean(axis=1)
        runs.append(Run(p, steps_arr, loss, margins[b], coefficients[b], changes[b], never[b], z0[b], init_gram[b],
                        runtime))
    return runs


def activation_and_slope(act: Activation) -> Callable[[np.ndarray], tuple]:
    r""":math:`(\sigma(z), \sigma'(z))` for the trainer: one compiled program (:func:`sigma_and_slope`),
    or where :math:`\sigma(z) = z\,\sigma'(z)` (:func:`~numerics.training.slope_times_input`: ReLU,
    leaky ReLU, |z|) the slope program alone and sigma as that product, the very product the compiled
    sigma forms (the same numbers): one multiply instead of ReLU's max or leaky ReLU's where over the
    batch (~25-40 us less per step of the Frei batch)."""
    if not slope_times_input(act):
        return sigma_and_slope(act)
    slope_of = act.numeric(ARRAYS.name, 1)

    def evaluate(z: np.ndarray) -> tuple:
        slope = slope_of(z)
        return np.multiply(slope, z), slope
    return evaluate


def same_data_block(problems: list[Problem]) -> int:
    """k when the problems come in consecutive blocks of k on the same data (the same array x: the
    small and default init of one seed in the Frei batch), else 1.  The trainer then forms the z-update
    :math:`UG` of a block as one (kM, n) x (n, n) product: each row of the product is the row of U
    times G, the same numbers as k separate products, and BLAS runs a taller product faster (the
    Frei batch: ~107 instead of ~121 us per step for (10, 100, 50) x (10, 50, 50))."""
    k = next((i for i, p in enumerate(problems) if p.x is not problems[0].x), len(problems))
    if k > 1 and len(problems) % k == 0 and all(p.x is problems[i - i % k].x for i, p in enumerate(problems)):
        return k
    return 1


def pattern_mismatch(act: Activation, run: Run, kink: float = 0.0) -> list[int]:
    """Per class (+1, -1): pairs whose final sign differs from the predicted frozen pattern
    (active exactly on own-class samples, except own-class pairs that start below the barrier);
    pairs with |z| < ``kink`` sit on the kink and count on neither side."""
    z = run.final_pre_activations
    predicted = run.own & (run.z0 > rank.barrier(act))
    wrong = ((z > 0) != predicted) & (np.abs(z) >= kink)
    return [int(wrong[np.sign(run.problem.a) == j].sum()) for j in (1.0, -1.0)]
