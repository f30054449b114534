"""BFD during training (section 4, F10-F14)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from theory.errors import IbcheckError
from theory.functional_dimension import Architecture, parse_architecture

from ..mlp import MLP, PAPER, TrainingPreset, train_classifier
from .jacobian import check_gram_memory, check_jacobian_memory, jacobian_blocks
from .rank import svd_rank
from .bfd import SVD_MAX_ENTRIES, affine_rank, batch_functional_dimension, output_jacobian


# ---- training (section 4, F10-F14) ---------------------------------------------------------------
DATASETS = ("digits", "digits4x4", "synthetic", "mnist")


@dataclass(frozen=True)
class TrainingSetup:
    r"""One training configuration for BFD tracking.

    ``digits`` are scikit-learn's 8x8 digits (64 features, /16); ``digits4x4`` the same pooled
    2x2 to 16 features (the quick profile's cheaper variant); ``synthetic`` Gaussian clusters (one
    per class, centres N(0, 2^2 I), unit spread); ``mnist`` local files (``mnist_path``).
    Random inputs are N(0.5, 1) per feature (the paper's script); by default
    :math:`n_r = 1.3(N_{par} - H)/N_L + 20` of them.  ``noise`` adds N(0, noise^2) to the
    training inputs; ``random_labels`` adds that many training samples with uniform random labels.
    ``output_ranks`` also ranks the softmax and centred-logit Jacobians on the training inputs.
    The checkpoints are the paper script's epochs (40, 80, 280, 680) and the initialization.
    MNIST's test inputs come from its test split (the others' from the same pool as training).
    Logit ranks are taken by :func:`batch_functional_dimension` with ``rank_method="auto"``: the
    SVD for Jacobians up to its size limit, above it (the paper's 20 000 x 25 720) the projected route,
    else the pivoted-Cholesky route or the Gram eigenvalues; ``device`` ``cpu`` factors
    in LAPACK, ``cuda[:N]`` runs the certificate's Cholesky and the eigensolver with torch in float64 there.
    """

    architecture: str = "16-8-8-8-10"
    dataset: str = "digits4x4"
    n_train: int = 100
    n_test: int = 100
    n_random: int | None = None
    epochs: tuple[int, ...] = (0, 40, 80, 280, 680)
    preset: TrainingPreset = PAPER
    noise: float = 0.0
    random_labels: int = 0
    mnist_path: str | None = None
    output_ranks: bool = True
    device: str = "cpu"

    def __post_init__(self):
        arch = parse_architecture(self.architecture)
        if self.dataset not in DATASETS:
            raise IbcheckError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}")
        if self.dataset == "mnist" and not self.mnist_path:
            raise IbcheckError("the mnist dataset needs a path to local files (option mnist=PATH)")
        features = {"digits": 64, "digits4x4": 16, "mnist": 784}.get(self.dataset)
        if features is not None and arch.input_dim != features:
            raise IbcheckError(f"{self.dataset} has {features} features; the architecture must start with "
                               f"{features}, got {arch}")
        if self.dataset != "synthetic" and arch.output_dim != 10:
            raise IbcheckError(f"{self.dataset} has 10 classes; the architecture must end with 10, got {arch}")
        if min(self.n_train, self.n_test) < 1 or self.noise < 0 or self.random_labels < 0 or not self.epochs:
            raise IbcheckError("need n_train, n_test >= 1, noise >= 0, random_labels >= 0 and some epochs")

    @property
    def arch(self) -> Architecture:
        return parse_architecture(self.architecture)

    @property
    def random_count(self) -> int:
        if self.n_random is not None:
            return self.n_random
        return int(round(1.3 * self.arch.rescaling_bound / self.arch.output_dim)) + 20


def classification_data(setup: TrainingSetup, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) for a setup, seeded; noise and random labels applied."""
    from .. import data

    rng = np.random.default_rng(seed)
    extra = setup.random_labels
    total = setup.n_train + setup.n_test + extra
    if setup.dataset in ("digits", "digits4x4"):
        x, y = data.digits(n=total, seed=seed)
        if setup.dataset == "digits4x4":
            x = x.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
    elif setup.dataset == "mnist":
        x, y = data.mnist(setup.mnist_path, "train", n=setup.n_train + extra, seed=seed)
        x_test, y_test = data.mnist(setup.mnist_path, "test", n=setup.n_test, seed=seed)
        x = np.vstack([x[:setup.n_train], x_test, x[setup.n_train:]])
        y = np.concatenate([y[:setup.n_train], y_test, y[setup.n_train:]])
    else:
        classes, dim = setup.arch.output_dim, setup.arch.input_dim
        centres = rng.standard_normal((classes, dim)) * 2.0
        y = rng.integers(classes, size=total)
        x = centres[y] + rng.standard_normal((total, dim))
    x_train, y_train = x[:setup.n_train], y[:setup.n_train]
    x_test, y_test = x[setup.n_train:setup.n_train + setup.n_test], y[setup.n_train:setup.n_train + setup.n_test]
    if extra:
        x_train = np.vstack([x_train, x[setup.n_train + setup.n_test:]])
        y_train = np.concatenate([y_train, rng.integers(setup.arch.output_dim, size=extra)])
    if setup.noise:
        x_train = x_train + rng.standard_normal(x_train.shape) * setup.noise
    return x_train, y_train, x_test, y_test


@dataclass
class TrainingTrace:
    """BFD along one training run, one entry per checkpoint epoch."""

    seed: int
    epochs: list[int]
    train: list[int]
    test: list[int]
    random: list[int]
    softmax_train: list[int]
    centred_train: list[int]
    loss: list[float]
    accuracy: list[float]
    bound: int
    input_geometry_bound_train: int
    min_gap_log10: float
    ill_determined: int = 0  # logit ranks flagged ill-determined (gap or a value near the tolerance)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def bfd_training_run(setup: TrainingSetup, seed: int) -> TrainingTrace:
    """Train one network (the setup's preset) and record at every checkpoint the logit BFD on
    training, test and random inputs, and the softmax and centred-logit ranks on training inputs."""
    arch = setup.arch
    x_train, y_train, x_test, _ = classification_data(setup, seed)
    x_random = np.random.default_rng(seed + 7919).normal(0.5, 1.0, (setup.random_count, arch.input_dim))
    for n in (len(x_train), len(x_test), len(x_random)):  # the route "auto" takes for each, sized first
        gram = n * arch.output_dim * arch.n_parameters > SVD_MAX_ENTRIES
        (check_gram_memory if gram else check_jacobian_memory)(arch, n)
    net = MLP.initialize(arch, setup.preset.init, seed)
    inputs = torch.as_tensor(x_train)
    labels = torch.as_tensor(y_train)
    trace = TrainingTrace(seed, [], [], [], [], [], [], [], [], arch.bound(len(x_train)),
                          arch.input_geometry_bound(affine_rank(x_train)), math.inf)

    def logit_rank(x):
        device = None if setup.device == "cpu" else setup.device  # the option's cpu: LAPACK through scipy
        return batch_functional_dimension(net, x, rank_method="auto", device=device).rank

    def record(epoch: int):
        with torch.no_grad():
            logits = net(inputs)
            loss = float(torch.nn.functional.cross_entropy(logits, labels))
            accuracy = float((logits.argmax(dim=1) == labels).double().mean())
        ranks = [logit_rank(x) for x in (x_train, x_test, x_random)]
        if setup.output_ranks:
            jac = jacobian_blocks(net, x_train)
            ranks += [svd_rank(output_jacobian(jac, logits.numpy(), kind)) for kind in ("softmax", "centred")]
        trace.epochs.append(epoch)
        stores = (trace.train, trace.test, trace.random, trace.softmax_train, trace.centred_train)
        for store, rank in zip(stores, ranks):
            store.append(rank.rank)
        trace.loss.append(loss)
        trace.accuracy.append(accuracy)
        # the softmax rank's gap is not a quality flag: saturation makes it small on purpose (3.3)
        trace.min_gap_log10 = min(trace.min_gap_log10, *(r.gap_log10 for i, r in enumerate(ranks) if i != 3))
        trace.ill_determined += sum(r.ill_determined for i, r in enumerate(ranks) if i != 3)

    train_classifier(net, inputs, labels, setup.preset, max(setup.epochs), seed=seed, checkpoints=setup.epochs,
                     record=record, describe=f"{arch} on {setup.dataset}, seed {seed}")
    return trace


def initialization_bfd(arch: Architecture | str, seeds: Sequence[int], ratio: float = 3.0) -> list[float]:
    r"""F10: BFD/(N_par - H) at He-normal initialization (biases N(0, 0.1^2)) on Gaussian inputs,
    with :math:`nN_L` about ``ratio`` times :math:`N_{par} - H`."""
    arch = parse_architecture(arch)
    n = int(math.ceil(ratio * arch.rescaling_bound / arch.output_dim))
    fractions = []
    for seed in seeds:
        net = MLP.initialize(arch, "he", seed)
        x = np.random.default_rng(seed + 104729).standard_normal((n, arch.input_dim))
        fractions.append(batch_functional_dimension(net, x).value / arch.rescaling_bound)
    return fractions


def relative_changes(traces: Sequence[TrainingTrace], which: str) -> list[float]:
    r"""Per seed, :math:`(\mathrm{BFD}_{end} - \mathrm{BFD}_0)/\mathrm{BFD}_0` on ``which`` inputs
    (``train``, ``test`` or ``random``): the quantity F12's interval is built from."""
    return [(getattr(t, which)[-1] - getattr(t, which)[0]) / getattr(t, which)[0] for t in traces]


def f12_evidence(traces: Sequence[TrainingTrace]) -> dict:
    """The paper's claim F12 measured: how many seeds end with train and test BFD below their
    initial values, the per-seed and median relative changes, and the minimum over checkpoints."""
    decreasing = [t.train[-1] < t.train[0] and t.test[-1] < t.test[0] for t in traces]
    return {
        "relative_change_train": relative_changes(traces, "train"),
        "relative_change_test": relative_changes(traces, "test"),
        "seeds": len(traces),
        "seeds_decreasing": int(sum(decreasing)),
        "seeds_train_decreasing": int(sum(t.train[-1] < t.train[0] for t in traces)),
        "seeds_test_decreasing": int(sum(t.test[-1] < t.test[0] for t in traces)),
        "median_relative_change_train": float(np.median([(t.train[-1] - t.train[0]) / t.train[0] for t in traces])),
        "median_relative_change_test": float(np.median([(t.test[-1] - t.test[0]) / t.test[0] for t in traces])),
        "min_over_checkpoints_relative_train": float(np.median([(min(t.train) - t.train[0]) / t.train[0]
                                                                for t in traces])),
    }


SWEEPS = {"width": "hidden width", "noise": "input noise std", "random_labels": "randomly labelled samples"}


def sweep(kind: str, levels: Sequence, seeds: Sequence[int], base: TrainingSetup) -> dict:
    r"""F14 (the authors' README, a paper claim): test BFD after training at each level of
    ``kind`` (``width``: every hidden layer that wide; ``noise``: input-noise std on the training
    inputs; ``random_labels``: extra randomly labelled training samples), with Spearman's rho over
    all (level, seed) pairs.  Measured on the fixed test inputs, so the levels are comparable."""
    from dataclasses import replace

    from scipy.stats import spearmanr

    if kind not in SWEEPS:
        raise IbcheckError(f"unknown sweep {kind!r}; known: {', '.join(SWEEPS)}")
    final_epoch = (0, max(base.epochs))
    values: dict = {}
    for level in levels:
        if kind == "width":
            arch = base.arch
            setup = replace(base, architecture="-".join(map(str, (arch.input_dim, *[int(level)] * (arch.depth - 1),
                                                                   arch.output_dim))), epochs=final_epoch)
        elif kind == "noise":
            setup = replace(base, noise=float(level), epochs=final_epoch)
        else:
            setup = replace(base, random_labels=int(level), epochs=final_epoch)
        values[level] = [bfd_training_run(setup, seed).test[-1] for seed in seeds]
    pairs = [(level, v) for level, vs in values.items() for v in vs]
    varies = len({p[0] for p in pairs}) > 1 and len({p[1] for p in pairs}) > 1
    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic if varies else float("nan")
    return {"kind": kind, "levels": list(levels), "test_bfd": {str(k): v for k, v in values.items()},
            "spearman_rho": float(rho), "label": "paper claim (authors' README)"}
