"""``python -m numerics`` runs the ``ibcheck`` command line."""

import sys

from .cli import main

sys.exit(main())
