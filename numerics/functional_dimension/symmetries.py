"""The symmetries of the parametrization (1.5.2, 1.6): rescaling null vectors, rescaled and
permuted networks."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from theory.functional_dimension import rescaling_support

from ..mlp import MLP


def rescaling_null_vectors(net: MLP) -> np.ndarray:
    r"""The H vectors :math:`D_{l,j}\theta` (1.5.2), shape (H, N_par)."""
    theta = net.flat().numpy()
    vectors = np.zeros((net.arch.hidden_neurons, net.arch.n_parameters))
    for row, (layer, neuron) in enumerate(net.arch.hidden_units()):
        plus, minus = rescaling_support(net.arch, layer, neuron)
        vectors[row, plus] = theta[plus]
        vectors[row, minus] = -theta[minus]
    return vectors


def rescaled(net: MLP, layer: int, lambdas: np.ndarray) -> MLP:
    r""":math:`T_\lambda\theta` for hidden layer ``layer`` (1.6)."""
    theta = net.flat().numpy().copy()
    for neuron, lam in enumerate(lambdas):
        plus, minus = rescaling_support(net.arch, layer, neuron)
        theta[plus] *= lam
        theta[minus] /= lam
    return MLP.from_flat(net.arch, theta, net.activation)


def permuted(net: MLP, layer: int, perm: Sequence[int]) -> MLP:
    """The network with hidden layer ``layer``'s neurons permuted (neuron j takes neuron perm[j]'s role)."""
    weights = [w.detach().clone() for w in net.weights]
    biases = [b.detach().clone() for b in net.biases]
    index = torch.as_tensor(list(perm))
    weights[layer - 1] = weights[layer - 1][index]
    biases[layer - 1] = biases[layer - 1][index]
    weights[layer] = weights[layer][:, index]
    return MLP(net.arch, weights, biases, net.activation)
