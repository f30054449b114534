"""JSON Schemas (draft 2020-12) of ibcheck's machine-readable outputs, versioned.

* ``derive.schema.json``: ``ibcheck derive --format json`` (also ``--kernel gaussian``,
  ``--architecture``),
* ``check.schema.json``: ``ibcheck check --format json`` (a list of records),
* ``report.schema.json``: ``report.json``,
* ``check-record.schema.json``: one check result, shared by the two above.

Every output carries ``schema_version`` ``"MAJOR.MINOR"``: a minor version adds optional fields,
a major version removes or changes one.  :func:`validate` checks a document with the optional
``jsonschema`` package (the ``test`` extra).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from theory.errors import IbcheckError

#: the version every output states (derive's is theory.derivation.DERIVE_SCHEMA_VERSION)
SCHEMA_VERSION = "1.0"
NAMES = ("derive", "check", "check-record", "report")


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    """The schema ``name`` (one of :data:`NAMES`) as a dict."""
    if name not in NAMES:
        raise IbcheckError(f"unknown schema {name!r}; known: {', '.join(NAMES)}")
    return json.loads(resources.files(__package__).joinpath(f"{name}.schema.json").read_text())


def validate(name: str, document) -> None:
    """Raise :class:`IbcheckError` (with the path and the reason) unless ``document`` fits schema ``name``."""
    try:
        import jsonschema
        from referencing import Registry, Resource
    except ImportError:
        raise IbcheckError("validating needs the jsonschema package (pip install 'ibcheck[test]')") from None
    registry = Registry().with_resources((load(n)["$id"], Resource.from_contents(load(n))) for n in NAMES)
    validator = jsonschema.Draft202012Validator(load(name), registry=registry)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise IbcheckError(f"{name} output does not fit its schema at {where}: {error.message}")
