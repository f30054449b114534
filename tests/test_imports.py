"""Start-up stays light: the commands that need neither torch nor matplotlib do not import them,
and `list` and `--help` (which compute nothing) not even sympy, numpy or scipy (structural: what
is in sys.modules afterwards, not how long it took); the catalogue that `ibcheck list` prints
instead of importing the check modules and sympy equals the registry and theory.BUILTINS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from numerics.catalogue import ACTIVATIONS, CHECKS, activations_from_theory, from_registry

HEAVY = ("torch", "matplotlib", "sklearn")
#: what a command that only prints fixed text has no use for (sympy alone is ~0.3 s of CPU)
COMPUTING = ("sympy", "numpy", "scipy", "mpmath")

_PROBE = """
import contextlib, io, json, sys
from numerics.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        status = main({argv!r})
    except SystemExit as done:  # --help exits through argparse
        status = done.code
print(json.dumps({{"status": status, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _probe(argv: list[str], heavy: tuple[str, ...]) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=heavy)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["list"], ["derive", "relu"], ["--help"]],
                         ids=["list", "derive", "help"])
def test_light_commands_import_neither_torch_nor_matplotlib(argv):
    assert _probe(argv, HEAVY) == {"status": 0, "heavy": []}


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["derive", "--help"]], ids=["list", "help", "derive-help"])
def test_printing_commands_import_no_computing_library(argv):
    assert _probe(argv, COMPUTING) == {"status": 0, "heavy": []}


def test_import_theory_stays_light():
    probe = "import sys, theory; print([m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', " \
            "'numerics', 'sklearn') or m in ('scipy.integrate', 'scipy.special')])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_theory_and_its_errors_import_without_sympy():
    """`theory`'s names load on first use; a submodule of the same name (theory.derive) never
    replaces the public function, in either import order."""
    probe = ("import sys, types, theory; from theory.errors import IbcheckError; light = 'sympy' not in sys.modules; "
             "import theory.rank; from theory import derive; import theory.derive; "
             "print(light, callable(theory.derive) and not isinstance(theory.derive, types.ModuleType), "
             "derive is theory.derive, theory.fourier.__name__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "theory.fourier"]


def test_the_catalogue_lists_exactly_the_builtin_activations():
    assert list(ACTIVATIONS) == activations_from_theory(), ("numerics/catalogue.py is out of date: paste the output "
                                                             "of `python -m numerics.catalogue` into ACTIVATIONS")


def test_the_catalogue_lists_exactly_the_registered_checks():
    assert list(CHECKS) == from_registry(), ("numerics/catalogue.py is out of date: paste the output of "
                                             "`python -m numerics.catalogue` into CHECKS")
