r"""Deep fully connected networks :math:`f_\theta(x) = z^L` (functional_dimension.md 1.1) and
their training presets.

:math:`z^l = M^l h^{l-1} + b^l`, :math:`h^0 = x`, :math:`h^l = \sigma(z^l)` for :math:`l < L`;
the output layer is affine (logits).  Parameters are float64 tensors; their flat layout
(:math:`M^l` row-major, then :math:`b^l`, layer by layer) is the one
:class:`theory.functional_dimension.Architecture` describes, so flat vectors, rescaling null
vectors and Jacobian columns all line up.  The activation is generated from its sympy
expression (:func:`numerics.torch_activation.torch_activation`); ReLU by default.

Initializations (seeded): ``he`` (:math:`M \sim N(0, 2/N_{l-1})`, :math:`b \sim N(0, 0.1^2)`,
the notes' F10 setting) and ``glorot`` (Glorot-uniform :math:`U(\pm\sqrt{6/(N_{l-1}+N_l)})`,
zero biases: the paper's script).

:data:`PAPER` is the paper's protocol (plain SGD, lr 0.1, minibatch 256, Glorot-uniform, zero
biases, softmax cross-entropy on the logits); :func:`train_classifier` runs a preset through
:func:`numerics.training.gradient_descent` (divergence detection, progress, log records) with the
gradient in closed form (:func:`classification_gradient`, numpy backpropagation, not autograd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch

import theory
from theory.activations import Activation
from theory.errors import IbcheckError
from theory.functional_dimension import Architecture, parse_architecture

from .reproducibility import generators
from .torch_activation import torch_activation
from .training import History, gradient_descent

INITS = ("he", "glorot")


class MLP:
    """A deep network with float64 parameters ``weights[l-1] = M^l``, ``biases[l-1] = b^l``."""

    def __init__(self, arch: Architecture | str, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                 act: Activation | None = None):
        self.arch = parse_architecture(arch)
        self.activation = act if act is not None else theory.activation("relu")
        self.sigma = torch_activation(self.activation)
        self.sigma_prime = _derivative(self.activation)
        self.weights = [w.detach().clone().to(torch.float64).requires_grad_(True) for w in weights]
        self.biases = [b.detach().clone().to(torch.float64).requires_grad_(True) for b in biases]
        for l, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            expected = (self.arch.widths[l], self.arch.widths[l - 1])
            if tuple(w.shape) != expected or tuple(b.shape) != expected[:1]:
                raise IbcheckError(f"layer {l} of {self.arch} needs M of shape {expected} and b of shape "
                                   f"{expected[:1]}, got {tuple(w.shape)} and {tuple(b.shape)}")

    @classmethod
    def initialize(cls, arch: Architecture | str, init: str = "he", seed: int = 0, act: Activation | None = None,
                   bias_std: float = 0.1) -> "MLP":
        """A seeded initialization (module docstring)."""
        arch = parse_architecture(arch)
        if init not in INITS:
            raise IbcheckError(f"unknown initialization {init!r}; known: {', '.join(INITS)}")
        _, gen = generators(seed)
        weights, biases = [], []
        for fan_in, fan_out in zip(arch.widths[:-1], arch.widths[1:]):
            if init == "he":
                weights.append(torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64) * math.sqrt(2 / fan_in))
                biases.append(torch.randn(fan_out, generator=gen, dtype=torch.float64) * bias_std)
            else:
                bound = math.sqrt(6 / (fan_in + fan_out))
                weights.append((2 * torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64) - 1) * bound)
                biases.append(torch.zeros(fan_out, dtype=torch.float64))
        return cls(arch, weights, biases, act)

    @classmethod
    def from_flat(cls, arch: Architecture | str, theta, act: Activation | None = None) -> "MLP":
        arch = parse_architecture(arch)
        layers = unflatten(arch, torch.as_tensor(np.asarray(theta), dtype=torch.float64))
        return cls(arch, [w for w, _ in layers], [b for _, b in layers], act)

    @property
    def parameters(self) -> list[torch.Tensor]:
        """[M^1, b^1, ..., M^L, b^L] (the flat layout's order)."""
        return [t for pair in zip(self.weights, self.biases) for t in pair]

    def flat(self) -> torch.Tensor:
        """theta as one detached float64 vector."""
        return torch.cat([t.detach().reshape(-1) for t in self.parameters])

    def numpy_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(w.detach().numpy().copy(), b.detach().numpy().copy()) for w, b in zip(self.weights, self.biases)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (n, N_L)."""
        return forward(self.sigma, list(zip(self.weights, self.biases)), x)

    def functional(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``f(theta_flat, x)`` -> logits of one input (shape (N_L,)) or a batch, for ``torch.func``."""
        arch, sigma = self.arch, self.sigma
        return lambda theta, x: forward(sigma, unflatten(arch, theta), x)

    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[z^1, ..., z^L] on a batch, each of shape (n, N_l), detached."""
        with torch.no_grad():
            h, out = x, []
            for l, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
                z = h @ w.T + b
                out.append(z)
                h = self.sigma(z) if l < self.arch.depth else z
        return out

    def pattern(self, x: torch.Tensor) -> np.ndarray:
        """Batch activation pattern: bool array (H, n), rows = hidden neurons layer by layer, 1[z > 0]."""
        zs = self.preactivations(x)[:-1]
        return torch.cat([(z > 0).T for z in zs]).numpy()


@lru_cache(maxsize=32)
def _derivative(act: Activation) -> Callable[[torch.Tensor], torch.Tensor]:
    """sigma' as a torch function (cached: sympy differentiation costs milliseconds)."""
    return torch_activation(act, derivative=1)


def unflatten(arch: Architecture, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Views (M^l, b^l) of a flat parameter vector in the architecture's layout."""
    if theta.shape[-1] != arch.n_parameters:
        raise IbcheckError(f"{arch} has {arch.n_parameters} parameters, got a vector of {theta.shape[-1]}")
    layers = []
    for l in range(1, arch.depth + 1):
        rows, cols = arch.widths[l], arch.widths[l - 1]
        start = arch.offsets[l - 1]
        layers.append((theta[start:start + rows * cols].reshape(rows, cols),
                       theta[start + rows * cols:start + rows * (cols + 1)]))
    return layers


def forward(sigma: Callable, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """:math:`z^L` for inputs x of shape (N_0,) or (n, N_0)."""
    h = x
    for l, (w, b) in enumerate(layers, start=1):
        z = h @ w.T + b
        h = sigma(z) if l < len(layers) else z
    return h


# ---- training ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingPreset:
    """How to train a classifier: optimizer step, minibatch size, initialization, loss."""

    name: str
    lr: float = 0.1
    batch_size: int = 256
    init: str = "glorot"
    loss: str = "cross_entropy"  # cross_entropy | squared (one-hot targets on the logits)

    def __post_init__(self):
        if self.lr <= 0 or self.batch_size < 1:
            raise IbcheckError("a training preset needs lr > 0 and batch_size >= 1")
        if self.init not in INITS:
            raise IbcheckError(f"unknown initialization {self.init!r}; known: {', '.join(INITS)}")
        if self.loss not in ("cross_entropy", "squared"):
            raise IbcheckError(f"unknown loss {self.loss!r}; known: cross_entropy, squared")


#: the paper's public experiment script: SGD lr 0.1, minibatch 256, Glorot-uniform, zero biases, cross-entropy
PAPER = TrainingPreset("paper")
#: the notes' F10 initialization with the same optimizer
HE = TrainingPreset("he", init="he")
PRESETS = {p.name: p for p in (PAPER, HE)}


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cross_entropy":
        return torch.nn.functional.cross_entropy(logits, labels)
    target = torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return 0.5 * ((logits - target) ** 2).sum(dim=1).mean()


def classification_gradient(net: MLP, kind: str) -> Callable[[np.ndarray, np.ndarray], tuple[float, list[np.ndarray]]]:
    r"""``gradient(x, labels) -> (loss, [dM^1, db^1, ..., dM^L, db^L])``: :func:`classification_loss`
    of a minibatch and its gradient by backpropagation written out in numpy, on the parameters' memory.

    With :math:`z^l = h^{l-1}M^{l\,T} + b^l` on the B rows of the batch, the output error is
    :math:`\delta^L = (\mathrm{softmax}(z^L) - e_y)/B` (cross-entropy, softmax from the shifted logits
    :math:`z - \max z` as torch's log-softmax) or :math:`(z^L - e_y)/B` (squared), and
    :math:`\partial M^l = \delta^{l\,T}h^{l-1}`, :math:`\partial b^l = \sum_i\delta^l_i`,
    :math:`\delta^{l-1} = (\delta^lM^l)\odot\sigma'(z^{l-1})`, with :math:`\sigma, \sigma'` compiled together
    (:func:`theory.evaluation.compile_expressions`).  At a pre-activation exactly 0 the slope is the one
    autograd takes through ``net.sigma`` (ReLU: 1, the clamp's, where sympy's Heaviside has 1/2): with
    zero biases (the paper's initialization) a sample that no unit of a layer lets through gives
    exact zeros in the next, and a different slope there changes the training run, not its rounding.
    (A kink elsewhere is met exactly with probability 0.)  The same gradient as autograd's to
    rounding at half its cost (680 steps of fd-training's 16-8-8-8-10 on 100 images: 0.09 vs 0.19 CPU-s).
    Raises :class:`IbcheckError` when :math:`\sigma'` has no pointwise values (a step activation)."""
    from theory.evaluation import compile_expressions

    from .training import full_shape

    activation = compile_expressions([net.activation.bound, net.activation.derivative(1)])
    zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    slope_at_zero = float(torch.autograd.grad(net.sigma(zero).sum(), zero)[0][0])
    layers = [(w.detach().numpy(), b.detach().numpy()) for w, b in zip(net.weights, net.biases)]
    depth = len(layers)

    def slope_of(z: np.ndarray, slope) -> np.ndarray:
        slope = full_shape(slope, z)
        at_zero = z == 0
        return np.where(at_zero, slope_at_zero, slope) if at_zero.any() else slope

    def gradient(x: np.ndarray, labels: np.ndarray) -> tuple[float, list[np.ndarray]]:
        hidden, slopes = [x], []
        for l, (w, b) in enumerate(layers, start=1):
            z = hidden[-1] @ w.T
            z += b
            if l < depth:
                value, slope = activation(z)
                hidden.append(full_shape(value, z))
                slopes.append(slope_of(z, slope))
        rows = np.arange(len(x))
        if kind == "cross_entropy":
            z -= z.max(axis=1, keepdims=True)
            error = np.exp(z)
            total = error.sum(axis=1)
            loss = float(np.mean(np.log(total) - z[rows, labels]))
            error /= total[:, None]
            error[rows, labels] -= 1.0
        else:
            error = z
            error[rows, labels] -= 1.0
            loss = float(0.5 * np.mean(np.sum(error * error, axis=1)))
        error /= len(x)
        grads = []
        for l in range(depth, 0, -1):
            w = layers[l - 1][0]
            grads += [error.sum(axis=0), error.T @ hidden[l - 1]]
            if l > 1:
                error = error @ w
                error *= slopes[l - 2]
        return loss, grads[::-1]
    return gradient


def train_classifier(net: MLP, x: torch.Tensor, labels: torch.Tensor, preset: TrainingPreset, epochs: int, *,
                     seed: int = 0, checkpoints: Sequence[int] = (), record: Callable[[int], object] | None = None,
                     describe: str = "training") -> History:
    """Minibatch SGD for ``epochs`` epochs (reshuffled each epoch, seeded; the last partial
    minibatch of an epoch is kept).  ``record(epoch)`` runs at every epoch in ``checkpoints``
    (epoch 0 = initialization); the history's ``steps`` are SGD steps, ``records`` the values."""
    n = len(x)
    per_epoch = math.ceil(n / preset.batch_size)
    rng, _ = generators(seed)
    order: list[np.ndarray] = []

    def next_batch() -> np.ndarray:
        if not order:
            permutation = rng.permutation(n)
            order.extend(permutation[i:i + preset.batch_size] for i in range(0, n, preset.batch_size))
        return order.pop(0)

    inputs, targets = x.detach().numpy(), labels.numpy()
    gradient = classification_gradient(net, preset.loss)

    def loss_fn() -> tuple[torch.Tensor, list[torch.Tensor]]:
        index = next_batch()
        loss, grads = gradient(inputs[index], targets[index])
        return torch.tensor(loss, dtype=torch.float64), [torch.from_numpy(g) for g in grads]

    wanted = sorted({int(e) for e in checkpoints if 0 <= e <= epochs})
    return gradient_descent(net.parameters, loss_fn, epochs * per_epoch, preset.lr,
                            record=(lambda step: record(step // per_epoch)) if record else None,
                            record_steps=[e * per_epoch for e in wanted], describe=describe)
