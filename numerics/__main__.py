"""``python -m numerics`` runs the ``ibcheck`` command line."""

from .cli import run

run()
