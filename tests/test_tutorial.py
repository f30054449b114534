"""The teaching notebook (docs/tutorial.ipynb) executes offline, and it and the written tutorial
(docs/tutorial.md) are what scripts/build_tutorial.py makes from its cells."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("build_tutorial", ROOT / "scripts" / "build_tutorial.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def test_the_committed_notebook_and_tutorial_are_built_from_the_cells():
    committed = nbformat.read(build.NOTEBOOK, as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == build.CELLS
    written = build.MARKDOWN.read_text()
    for kind, source in build.CELLS:
        assert source in written, source[:60]


def test_the_notebook_executes_offline_and_shows_its_results(monkeypatch):
    # no network: a proxy that does not exist makes any attempt fail loudly instead of hanging
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = build.execute(build.notebook(), timeout=300)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "(omega**4, D**2*Abs(D)/12)" in text  # ReLU: W = omega^4, k(D) = |D|^3 / 12
    gap = float(text.split("natural cubic spline| / max|y| = ")[1].split()[0])
    # measured 0.017 at this seed; width 2e4 random features carry a Monte Carlo error of order
    # 1/sqrt(2e4) ~ 0.7% of the scale, and the offset range [-2, 2] a small bias against the spline
    assert gap < 0.03
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    assert any("text/html" in o.get("data", {}) and "transform" in o["data"]["text/html"] for o in outputs)
