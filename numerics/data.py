"""Data sets: the toy sets of the reference runs, high-dimensional Gaussian and orthogonal
data for the rank/margin theory, and the scikit-learn digits (shipped with scikit-learn,
nothing is downloaded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

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


def orthogonal_classes(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """x_i = sqrt(d) e_i (exactly orthogonal, ||x_i||^2 = d as for N(0, I_d) inputs), balanced labels +-1."""
    if n > d:
        raise IbcheckError(f"cannot have n = {n} orthogonal inputs in d = {d} dimensions")
    x = np.zeros((n, d))
    x[np.arange(n), np.arange(n)] = np.sqrt(d)
    return x, np.where(np.arange(n) < (n + 1) // 2, 1.0, -1.0)


def near_orthogonality(x: np.ndarray) -> float:
    r"""The constant C realised by the sample:
    :math:`\min_i \|x_i\|^2 / (n \max_{k \ne i} |\langle x_i, x_k\rangle|)` (inf if orthogonal)."""
    gram = x @ x.T
    n = len(x)
    off = np.abs(gram - np.diag(np.diag(gram)))
    worst = off.max(axis=1)
    with np.errstate(divide="ignore"):
        return float(np.min(np.diag(gram) / (n * worst)))


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of the (x, y) pairs drawn without replacement by ``seed`` (all of them when n is None)."""
    if n is None:
        return x, y
    if n > len(x):
        raise IbcheckError(f"asked for {n} {what}, only {len(x)} available")
    index = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return x[index], y[index]


@lru_cache(maxsize=1)
def _digits_table() -> np.ndarray:
    """scikit-learn's ``datasets/data/digits.csv.gz`` (1797 rows: 64 pixels, then the label), parsed
    as ``load_digits`` parses it (``np.loadtxt``, the same numbers) but without importing scikit-learn:
    with the scipy.stats it imports that is 0.37 CPU-s in a worker, for a 0.5 MB file.  Read-only, kept."""
    import gzip
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("sklearn")  # locates the package without running it
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, mode="rt", encoding="utf-8") as text:
        table = np.loadtxt(text, delimiter=",")
    table.flags.writeable = False
    return table


def digits(classes: tuple[int, ...] | None = None, n: int | None = None, seed: int = 0,
           scale: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1797 images, 64 pixels in 0..16) divided by ``scale``.

    ``classes`` keeps only those labels; ``n`` draws that many images without replacement.
    """
    table = _digits_table()
    x, y = table[:, :-1] / scale, table[:, -1].astype(int)
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], y[keep]
    return _subsample(x, y, n, seed, "digit images")


#: IDX file names of the two MNIST splits (also accepted with '.' for the second '-' and with .gz)
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path) -> np.ndarray:
    """An IDX array (the MNIST file format: magic 0x0000, type 0x08 = unsigned bytes, ndim,
    big-endian int32 dimensions, then the data), plain or gzip-compressed."""
    import gzip
    from pathlib import Path

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise IbcheckError(f"cannot read IDX file {path}: {err.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IbcheckError(f"{path}: not a valid gzip file ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise IbcheckError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise IbcheckError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise IbcheckError(f"{path}: IDX header says {shape} ({size} bytes) but the file holds {len(raw) - header}")
    return np.frombuffer(raw[header:], dtype=np.uint8).reshape(shape)


def _mnist_idx(directory, split: str) -> tuple[np.ndarray, np.ndarray]:
    from pathlib import Path

    arrays = []
    for stem in MNIST_FILES[split]:
        names = [stem, stem.replace("-idx", ".idx")]
        candidates = [Path(directory) / (name + suffix) for name in names for suffix in ("", ".gz")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise IbcheckError(f"no MNIST file {stem}[.gz] in {directory}; give the directory holding the "
                               "IDX files or an .npz with x_train, y_train, x_test, y_test")
        arrays.append(read_idx(found))
    return arrays[0], arrays[1]


def _mnist_npz(path, split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = (f"x_{split}", f"y_{split}")
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise IbcheckError(f"{path} lacks {', '.join(missing)}; an MNIST .npz holds x_train, y_train, "
                                   "x_test, y_test")
            return archive[keys[0]], archive[keys[1]]
    except (OSError, ValueError) as err:
        raise IbcheckError(f"cannot read {path} as .npz: {err}") from None


def mnist(path, split: str = "train", n: int | None = None, seed: int = 0,
          scale: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from local files (nothing is downloaded): ``path`` is a directory with the standard
    IDX files or an ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``.  Returns the
    images flattened to 784 pixels divided by ``scale`` (float64) and the integer labels; ``n``
    draws that many without replacement (seeded)."""
    from pathlib import Path

    if split not in MNIST_FILES:
        raise IbcheckError(f"MNIST split must be 'train' or 'test', got {split!r}")
    path = Path(path)
    if path.is_dir():
        images, labels = _mnist_idx(path, split)
    elif path.is_file():
        images, labels = _mnist_npz(path, split)
    else:
        raise IbcheckError(f"MNIST path {path} does not exist; give a directory of IDX files or an .npz file")
    if len(images) != len(labels):
        raise IbcheckError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    x = np.asarray(images, dtype=np.float64).reshape(len(images), -1) / scale
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    return _subsample(x, y, n, seed, f"MNIST {split} images")


@dataclass(frozen=True)
class CsvData:
    """A user's data set read by :func:`load_csv_data`: inputs (N, d), targets (N,), the file's
    path and the SHA-256 of its bytes (reports name both)."""

    x: np.ndarray = field(compare=False, repr=False)
    y: np.ndarray = field(compare=False, repr=False)
    path: str
    sha256: str

    def describe(self) -> str:
        """``PATH (N points in dD, sha256 abcd...)`` for reports."""
        return f"{self.path} ({len(self.y)} points in {self.x.shape[1]}D, sha256 {self.sha256})"


#: accepted CSV headers: the input columns of each dimension (the target column is ``y``)
CSV_INPUTS = {1: ("x",), 2: ("x1", "x2")}


def load_csv_data(path) -> CsvData:
    """A 1D or 2D regression data set from a CSV file with a header row: columns ``x, y`` (1D)
    or ``x1, x2, y`` (2D), in any order, one point per row, finite numbers, at least two points
    and no repeated input (an interpolation claim needs distinct data points).  Equal objects
    (same path and bytes) compare equal, so runs can be cached by data set."""
    import csv
    import hashlib
    import io
    from pathlib import Path

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise IbcheckError(f"cannot read data file {path}: {err.strerror}") from None
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as err:
        raise IbcheckError(f"{path}: not a readable CSV file ({err})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise IbcheckError(f"{path} is empty; expected a header x,y (1D) or x1,x2,y (2D) and data rows")
    header = [cell.strip().lower() for cell in rows[0]]
    dims = [d for d, names in CSV_INPUTS.items() if sorted(header) == sorted(names + ("y",))]
    if not dims:
        raise IbcheckError(f"{path}: header {','.join(header)!r} is not x,y (1D) or x1,x2,y (2D)")
    columns = [header.index(name) for name in CSV_INPUTS[dims[0]] + ("y",)]
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise IbcheckError(f"{path}, line {line}: {len(row)} fields, the header has {len(header)}")
        try:
            numbers = [float(row[c]) for c in columns]
        except ValueError:
            raise IbcheckError(f"{path}, line {line}: not a number in {row!r}") from None
        if not all(np.isfinite(numbers)):
            raise IbcheckError(f"{path}, line {line}: non-finite value in {row!r}")
        values.append(numbers)
    if len(values) < 2:
        raise IbcheckError(f"{path}: {len(values)} data row(s); need at least 2 points")
    table = np.array(values, dtype=float)
    x, y = table[:, :-1], table[:, -1]
    if len(np.unique(x, axis=0)) < len(x):
        raise IbcheckError(f"{path}: repeated input point(s); give each x once")
    return CsvData(x, y, str(path), hashlib.sha256(raw).hexdigest())
