"""Content-addressed cache of check results, so that a rerun reuses what has not changed.

A result is stored under the SHA-256 of everything that determines it:

* the activation: its label and its expression with parameter values (``sympy.srepr``),
* the check id (or ``derivation`` for the derivation summary),
* the profile, the seed and the check options,
* the code version: a hash of every ``.py`` source of the ``theory`` and ``numerics`` packages,
  so that any change to the code invalidates every entry.

Entries are JSON files (``<dir>/<key[:2]>/<key>.json``) holding a schema version
(:data:`SCHEMA`), the key's inputs (to see what an entry is), the record and the SHA-256 of the
inputs and record (:func:`checksum`), written atomically.  Nothing read is trusted: an entry
counts as a hit only if it parses, has this schema, its inputs are the ones asked for, its
checksum matches, and the caller's ``validate`` accepts the record (the suite rebuilds each
check result from it and re-judges the verdict from the stored criteria, see
:meth:`numerics.checks.CheckResult.from_dict`).  Any other entry is *corrupt*: a miss, so it is
recomputed and overwritten; the first one per run prints one warning line, and
:meth:`ResultCache.describe` counts them.  The directory is ``.ibcheck-cache/`` in the
working directory, or ``$IBCHECK_CACHE_DIR``.  Results with verdict ``error`` are not stored:
an error may be transient (a time limit, memory), so it is retried on the next run; nor are
records marked ``time_limited`` (a symbolic time limit expired while computing them, so under
less load the result could be different, e.g. a closed form instead of numerics).
``ibcheck ... --no-cache`` recomputes everything and refreshes the stored entries; deleting
the directory empties the cache.  A cache that cannot be written prints one warning and the
run goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable

import sympy as sp

from theory.activations import Activation
from theory.errors import IbcheckError

DEFAULT_DIRECTORY = ".ibcheck-cache"
#: the entry format; entries of any other schema are corrupt (recomputed)
SCHEMA = "ibcheck-cache/2"


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 (16 hex digits) of the ``theory`` and ``numerics`` sources, paths included."""
    import numerics
    import theory

    digest = hashlib.sha256()
    for package in (theory, numerics):
        root = Path(package.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package.__name__}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _file_digests(options: dict) -> dict:
    """SHA-256 of every option value that names an existing file (``--option data=PATH``): a file
    edited in place must not hit the result cached for its old contents."""
    digests = {}
    for key, value in options.items():
        path = Path(str(value))
        try:
            if path.is_file():
                digests[str(key)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except (OSError, ValueError):
            continue
    return digests


def cache_inputs(act: Activation, check: str, profile: str | None = None, seed: int | None = None,
                 options: dict | None = None) -> dict:
    """What a cached result depends on (hashed into its key): option files by their contents."""
    options = options or {}
    return {"activation": act.label, "expression": sp.srepr(act.bound), "check": check,
            "profile": profile, "seed": seed, "options": {str(k): str(v) for k, v in options.items()},
            "files": _file_digests(options), "code_version": code_version()}


def cache_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def checksum(inputs: dict, record: dict) -> str:
    """SHA-256 of the canonical JSON of an entry's inputs and record (JSON floats round-trip exactly)."""
    canonical = json.dumps({"inputs": inputs, "record": record}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CorruptEntry(ValueError):
    """A cache entry that fails validation; the message says why (one line)."""


class ResultCache:
    """JSON records on disk, addressed by :func:`cache_key`.

    ``read=False`` (``--no-cache``) makes every lookup a miss but still stores fresh results.
    """

    def __init__(self, directory: str | os.PathLike | None = None, read: bool = True):
        self.directory = Path(directory or os.environ.get("IBCHECK_CACHE_DIR") or DEFAULT_DIRECTORY)
        self.read = read
        self.writable = True
        self.hits = 0
        self.misses = 0
        self.corrupt = 0  # entries that failed validation (each also counts as a miss)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, inputs: dict, validate: Callable[[dict], dict] | None = None) -> dict | None:
        """The stored record for these inputs, or None (a miss; a corrupt entry is a miss too).

        ``validate(record)`` returns the record to use (e.g. re-judged) or raises
        :class:`CorruptEntry`, ``ValueError``, ``TypeError``, ``KeyError`` or ``IbcheckError``.
        """
        record = self._read(inputs, validate) if self.read else None
        if record is None:
            self.misses += 1
        else:
            self.hits += 1
        return record

    def _read(self, inputs: dict, validate: Callable[[dict], dict] | None) -> dict | None:
        path = self._path(cache_key(inputs))
        try:
            text = path.read_bytes()
        except OSError:  # not there (or unreadable): an ordinary miss
            return None
        try:
            entry = json.loads(text)
            if not isinstance(entry, dict) or entry.get("schema") != SCHEMA:
                raise CorruptEntry(f"not a {SCHEMA} entry")
            if entry.get("inputs") != inputs:
                raise CorruptEntry("its inputs are not those of its key")
            record = entry.get("record")
            if not isinstance(record, dict) or entry.get("checksum") != checksum(inputs, record):
                raise CorruptEntry("its checksum does not match its content")
            return validate(record) if validate is not None else record
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, IbcheckError) as err:
            self._corrupt(path, err)
            return None

    def _corrupt(self, path: Path, err: Exception) -> None:
        self.corrupt += 1
        if self.corrupt == 1:
            reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
            print(f"ibcheck: warning: ignoring a corrupt cache entry {path} ({reason}); it is recomputed "
                  "(the report's cache details count any others)", file=sys.stderr)

    def store(self, inputs: dict, record: dict) -> None:
        """Store a JSON-ready record (skipped for ``error`` verdicts, for results reached while a
        time limit expired, and when not writable)."""
        if not self.writable or record.get("verdict") == "error" or record.get("error") \
                or record.get("time_limited"):
            return
        path = self._path(cache_key(inputs))
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(descriptor, "w") as handle:  # dumps: json's C encoder (dump streams in Python)
                handle.write(json.dumps({"schema": SCHEMA, "inputs": inputs, "record": record,
                                         "checksum": checksum(inputs, record)}))
            os.replace(temporary, path)
            temporary = None
        except OSError as err:
            self.writable = False
            print(f"ibcheck: warning: cannot write the result cache in {self.directory} ({err.strerror or err}); "
                  "continuing without it (set IBCHECK_CACHE_DIR to a writable folder)", file=sys.stderr)
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

    def describe(self) -> dict:
        return {"directory": str(self.directory.resolve()), "read": self.read, "hits": self.hits,
                "misses": self.misses, "corrupt": self.corrupt, "code_version": code_version()}
