"""Data sets: the toy sets of the reference runs, high-dimensional Gaussian and orthogonal
data for the rank/margin theory, and the scikit-learn digits (shipped with scikit-learn,
nothing is downloaded)."""

from __future__ import annotations

import numpy as np

from theory.errors import IbcheckError

#: the 1D reference set of spectral_bias.md section 6.3
TOY_1D_X = np.array([-0.8, -0.5, -0.1, 0.2, 0.45, 0.8])
TOY_1D_Y = np.array([0.3, -0.4, 0.5, 0.1, -0.6, 0.2])


def toy_1d() -> tuple[np.ndarray, np.ndarray]:
    """Six points in [-1, 1] (inputs shape (6, 1), targets shape (6,))."""
    return TOY_1D_X[:, None].copy(), TOY_1D_Y.copy()


def toy_2d(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform in the unit disc with smooth targets sin(2 x1) + cos(3 x2) - 1/2."""
    rng = np.random.default_rng(seed)
    r = np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    y = np.sin(2 * x[:, 0]) + np.cos(3 * x[:, 1]) - 0.5
    return x, y


def gaussian_classes(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x_i ~ N(0, I_d), balanced labels +-1 (first half +1)."""
    if n < 2 or d < 1:
        raise IbcheckError(f"need n >= 2 samples and d >= 1 dimensions, got n={n}, d={d}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.where(np.arange(n) < (n + 1) // 2, 1.0, -1.0)
    return x, y


def orthogonal_classes(n: int, d: int, norm: float | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n exactly orthogonal inputs of norm ``norm`` (default sqrt(d)), balanced labels +-1."""
    if n > d:
        raise IbcheckError(f"cannot have {n} orthogonal vectors in {d} dimensions")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    x = q.T * (np.sqrt(d) if norm is None else norm)
    y = np.where(np.arange(n) < (n + 1) // 2, 1.0, -1.0)
    return x, y


def near_orthogonality(x: np.ndarray) -> float:
    r"""The constant C realised by the sample:
    :math:`\min_i \|x_i\|^2 / (n \max_{k \ne i} |\langle x_i, x_k\rangle|)` (inf if orthogonal)."""
    gram = x @ x.T
    n = len(x)
    off = np.abs(gram - np.diag(np.diag(gram)))
    worst = off.max(axis=1)
    with np.errstate(divide="ignore"):
        return float(np.min(np.diag(gram) / (n * worst)))


def digits(classes: tuple[int, ...] | None = None, n: int | None = None, seed: int = 0,
           scale: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1797 images, 64 pixels in 0..16) divided by ``scale``.

    ``classes`` keeps only those labels; ``n`` draws that many images without replacement.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = data.data / scale, data.target
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], y[keep]
    if n is not None:
        if n > len(x):
            raise IbcheckError(f"asked for {n} digit images, only {len(x)} available")
        index = np.random.default_rng(seed).choice(len(x), n, replace=False)
        x, y = x[index], y[index]
    return x, y
