"""Write docs/tutorial.ipynb (the teaching notebook, unexecuted) and docs/tutorial.md (the written
tutorial: the same cells, executed, outputs as text and figures as PNG files in
docs/tutorial_files/).

    python scripts/build_tutorial.py            # both files
    python scripts/build_tutorial.py --notebook # only the notebook (no execution)

The cells below are the one source of both; tests/test_tutorial.py executes the committed
notebook offline and checks that both files still match these cells.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
MARKDOWN = ROOT / "docs" / "tutorial.md"
FIGURES = ROOT / "docs" / "tutorial_files"

CELLS: list[tuple[str, str]] = [
    ("markdown", r"""# What does gradient descent prefer? A walk through ibcheck

This notebook derives, for three activations, what theory predicts a shallow network trained by
gradient descent prefers, and then trains small networks to see it. It runs offline in about a
minute on a laptop. Run it from the project root (`jupyter lab docs/tutorial.ipynb`).

The network is $f(x) = \sum_i v_i\, \sigma(w_i x + b_i)$. In the **kernel regime** (wide, small
output weights) training barely moves $w_i, b_i$ and the learned function minimizes a spectral
penalty $\int W(\omega)\, |\hat f(\omega)|^2\, d\omega$ with $W(\omega) = 1/|\hat\sigma(\omega)|^2$.
In the **adaptive regime** the kinks of $\sigma$ move to the data points."""),
    ("code", """import numpy as np
import matplotlib.pyplot as plt
import theory"""),
    ("markdown", r"""## 1. ReLU, step by step

`theory.derive` returns a `Derivation`: numbered steps, each a sentence and a formula, verified
numerically (mpmath quadrature) before it is trusted. In Jupyter it displays itself."""),
    ("code", """relu = theory.derive(theory.activation("relu"))
relu"""),
    ("markdown", r"""The two results the kernel regime needs: the spectral weight $W(\omega)$, here
$\omega^4$ (ReLU penalizes the second derivative: cubic splines), and the infinite-width kernel
$k(D)$ of the random-feature model with flat offsets."""),
    ("code", """relu.results["spectral_weight"], relu.results["kernel"]"""),
    ("markdown", r"""## 2. tanh and a formula of your own

A smooth activation has a transform that decays exponentially, so its $W(\omega)$ grows
exponentially: tanh penalizes high frequencies far more than ReLU does. Any formula in $x$ works
(it is parsed, never evaluated as Python)."""),
    ("code", """tanh = theory.derive(theory.activation("tanh"))
mine = theory.derive(theory.activation("x/(1+abs(x))"))
for d in (tanh, mine):
    print(d.subject, "  W(omega) =", d.results["spectral_weight"])"""),
    ("code", """from numerics.theory_checks import weight_curve

fig, ax = plt.subplots(figsize=(6, 3.5))
for name in ("relu", "tanh", "x/(1+abs(x))"):
    curve = weight_curve(theory.activation(name))
    ax.semilogy(curve["omega"], curve["W"], label=name)
ax.set_xlabel("omega"); ax.set_ylabel("W(omega)"); ax.legend(); ax.set_title("spectral weights")
plt.show()"""),
    ("markdown", r"""## 3. The kernel regime: a wide ReLU network is a cubic spline

Train a wide network with gradient descent on six points, with small output weights so that it
stays lazy, and compare with the prediction: the interpolant of the kernel $k(D) = |D|^3/12$
plus an affine part (the null space of $W = \omega^4$), i.e. the natural cubic spline."""),
    ("code", """import torch

torch.manual_seed(0)
x = torch.tensor([-0.9, -0.5, -0.1, 0.2, 0.6, 0.9], dtype=torch.float64)
y = torch.tensor([0.2, -0.4, 0.5, 0.1, -0.3, 0.4], dtype=torch.float64)
width = 20000
w = torch.empty(width, dtype=torch.float64).uniform_(-1, 1).sign()  # unit first-layer norm
b = torch.empty(width, dtype=torch.float64).uniform_(-2, 2)          # flat offsets on [-2, 2]
features = torch.relu(w[None, :] * x[:, None] + b[None, :]) / width ** 0.5
affine = torch.stack([torch.ones_like(x), x], dim=1)                  # the null space of W = omega^4: free

# Lazy training moves only the output layer; gradient descent from v = 0 then converges to the
# minimum-norm interpolant, which we compute directly (the affine part is left unpenalized):
project = torch.eye(len(x), dtype=torch.float64) - affine @ torch.linalg.pinv(affine)
v = torch.linalg.pinv(project @ features) @ (project @ y)
c = torch.linalg.lstsq(affine, y - features @ v).solution
print("max residual at the data:", (features @ v + affine @ c - y).abs().max().item())"""),
    ("code", """from scipy.interpolate import CubicSpline

grid = torch.linspace(-0.9, 0.9, 300, dtype=torch.float64)
trained = (torch.relu(w[None, :] * grid[:, None] + b[None, :]) / width ** 0.5) @ v + c[0] + c[1] * grid
spline = CubicSpline(x.numpy(), y.numpy(), bc_type="natural")(grid.numpy())
gap = np.abs(trained.numpy() - spline).max() / y.abs().max().item()
print(f"sup |trained - natural cubic spline| / max|y| = {gap:.3f}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(grid, trained, label=f"trained, width {width}")
ax.plot(grid, spline, "--", label="natural cubic spline (theory)")
ax.plot(x, y, "ko", label="data"); ax.legend(); ax.set_title("kernel regime")
plt.show()"""),
    ("markdown", r"""The gap is small but not zero: finite width (Monte Carlo error ~ width^-1/2) and the
finite offset range $[-2, 2]$ (the spline is the idealized limit of flat offsets on the whole
line) both contribute. The `kernel-fit-1d` check measures
exactly this, over widths and replicates, and judges it against a tolerance, with a control.

## 4. Verdicts

A check turns a measurement into an outcome: `agrees`, `disagrees`, `inconclusive` (with a kind),
`not_applicable` or `error`. It lists its criteria with 95% intervals, the control (a wrong
prediction that must be rejected) and the premises it measured. Here the `transform` check
compares the derived closed form with quadrature:"""),
    ("code", """from numerics.checks import Context, get_check, run_check

result = run_check(get_check("transform"), theory.activation("tanh"), Context())
result"""),
    ("markdown", r"""A whole comparison runs with `ibcheck report --activations relu tanh "x/(1+abs(x))"`
(or `numerics.suite.run_suite` from Python); its result displays as a matrix of outcomes here too.
The claims behind each check are listed in `docs/claims.md`, and `docs/reports.md` explains how
outcomes are decided."""),
]


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for number, cell in enumerate(nb.cells):  # stable ids: the committed file does not change on rebuild
        cell["id"] = f"cell-{number}"
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    return nb


def to_markdown(nb: nbformat.NotebookNode) -> str:
    """The executed notebook as Markdown: code in fences, text outputs as text blocks, images as
    files in docs/tutorial_files/ (Markdown or LaTeX display data where there is no image)."""
    FIGURES.mkdir(exist_ok=True)
    lines, figure = ["<!-- written by scripts/build_tutorial.py from docs/tutorial.ipynb: edit the cells there -->", ""], 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines += [cell.source, ""]
            continue
        lines += ["```python", cell.source, "```", ""]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                figure += 1
                name = f"figure-{figure}.png"
                (FIGURES / name).write_bytes(base64.b64decode(data["image/png"]))
                lines += [f"![figure {figure}](tutorial_files/{name})", ""]
            elif "text/markdown" in data:
                lines += [data["text/markdown"], ""]
            elif "text/latex" in data:  # before HTML: Markdown viewers typeset $$ ... $$, not styled HTML
                lines += [data["text/latex"], ""]
            elif output.get("output_type") == "stream" or "text/plain" in data:
                text = output.get("text") or data.get("text/plain", "")
                lines += ["```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", action="store_true", help="write only the notebook")
    args = parser.parse_args()
    nb = notebook()
    nbformat.write(nb, NOTEBOOK)
    if not args.notebook:
        MARKDOWN.write_text(to_markdown(execute(notebook())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
