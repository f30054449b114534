"""Start-up stays light: the commands that need neither torch nor matplotlib do not import them
(structural: what is in sys.modules afterwards, not how long it took), and the check catalogue
that `ibcheck list` prints instead of importing the check modules equals the registry."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from numerics.catalogue import CHECKS, from_registry

HEAVY = ("torch", "matplotlib", "sklearn")

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


@pytest.mark.parametrize("argv", [["list"], ["derive", "relu"], ["--help"]],
                         ids=["list", "derive", "help"])
def test_light_commands_import_neither_torch_nor_matplotlib(argv):
    done = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 0, "heavy": []}


def test_import_theory_stays_light():
    probe = "import sys, theory; print([m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', " \
            "'numerics', 'sklearn') or m in ('scipy.integrate', 'scipy.special')])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_catalogue_lists_exactly_the_registered_checks():
    assert list(CHECKS) == from_registry(), ("numerics/catalogue.py is out of date: paste the output of "
                                             "`python -m numerics.catalogue` into CHECKS")
