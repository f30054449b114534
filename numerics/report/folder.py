"""The output folder of a report: owned by the report, written as one set, never a user's file touched.

A report folder holds ``index.html``, ``report.md``, ``report.json``, ``figures/*.png`` and a
manifest, :data:`MANIFEST`, listing every file the report wrote there.  Rules:

* **Ownership.**  A report is written only into a folder that is new, empty, or holds nothing
  but what an earlier report wrote (its manifest says which files), other report folders (with
  their own manifest, e.g. ``reports/relu/`` of ``ibcheck check relu``) and the files named in
  :data:`KEEP` (one name per line; the repository's ``reports/.ibcheck-keep`` names its
  ``README.md``).  Anything else is a one-line error before any work starts, unless ``--force``;
  even then a file the report did not write is never deleted, only the three report files
  themselves are replaced.  A folder written by ibcheck before manifests existed is recognized
  by its ``report.json`` schema.
* **One set.**  Everything is written into a staging folder inside the target first (same file
  system), then moved into place: figures (content-addressed, so the old ``report.md`` still
  finds its own), the three files, the manifest; only then are the figures that no report file
  uses any more removed.  The manifest is widened *before* files move, so an interrupted run
  never makes the report's own files look foreign.  A destination of the wrong kind (a folder
  named ``report.json``, a file named ``figures``) is found before anything is replaced.
* **No leftovers.**  Staging folders and temporaries of runs that died are removed when the next
  run starts; those of a run still going (its process id is in the name) are left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from theory.errors import IbcheckError

MANIFEST = ".ibcheck-manifest.json"
KEEP = ".ibcheck-keep"
MANIFEST_SCHEMA = "ibcheck-report-folder/1"
STAGING_PREFIX = ".ibcheck-staging-"
#: temporaries of earlier versions (``.index.html.<12 hex>.tmp``) and of writability probes
_LEFTOVER = re.compile(r"^\.(?:.+\.[0-9a-f]{12}\.tmp|ibcheck-probe-.*)$")
_FIGURE = re.compile(r"^[0-9a-f]{16}\.png$")


def _short(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_leftovers(directory: Path, figures: str) -> None:
    """Delete staging folders of dead runs and old temporaries (here and in ``figures``)."""
    for path in directory.iterdir():
        match = re.fullmatch(re.escape(STAGING_PREFIX) + r"(\d+)-[0-9a-f]+", path.name)
        if match and path.is_dir() and not path.is_symlink() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
    for folder in (directory, directory / figures):
        if folder.is_dir() and not folder.is_symlink():
            for path in folder.iterdir():
                if _LEFTOVER.match(path.name) and path.is_file() and not path.is_symlink():
                    with contextlib.suppress(OSError):
                        path.unlink()


def owned_files(directory: Path, report_files: tuple[str, ...], figures: str) -> set[str]:
    """The files (paths relative to ``directory``) a report wrote there, by its manifest.

    A folder without a manifest whose ``report.json`` is an ibcheck report (written before
    manifests existed) owns its report files and content-addressed figures.
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        if manifest.get("schema") == MANIFEST_SCHEMA and all(isinstance(f, str) for f in manifest["files"]):
            return set(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        legacy = json.loads((directory / "report.json").read_text()).get("schema", "").startswith("ibcheck-report/")
    except (OSError, ValueError, AttributeError):
        legacy = False
    if not legacy:
        return set()
    pictures = directory / figures
    found = [f"{figures}/{p.name}" for p in pictures.iterdir() if _FIGURE.match(p.name)] if pictures.is_dir() else []
    return set(report_files) | set(found)


def _kept(directory: Path) -> set[str]:
    try:
        lines = (directory / KEEP).read_text().splitlines()
    except (OSError, ValueError):
        return set()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def foreign_files(directory: Path, report_files: tuple[str, ...], figures: str) -> list[str]:
    """Entries of ``directory`` the report did not write (and may not replace), sorted."""
    owned, kept = owned_files(directory, report_files, figures), _kept(directory)
    foreign = []
    for path in sorted(directory.iterdir()):
        name = path.name
        if name in (MANIFEST, KEEP) or name in kept or name.startswith(STAGING_PREFIX) or _LEFTOVER.match(name):
            continue
        if name == figures and path.is_dir() and not path.is_symlink():
            foreign += [f"{figures}/{p.name}" for p in sorted(path.iterdir())
                        if f"{figures}/{p.name}" not in owned and not _LEFTOVER.match(p.name)]
        elif path.is_dir() and not path.is_symlink():
            if not owned_files(path, report_files, figures):  # another report's folder is fine
                foreign.append(name + "/")
        elif name not in owned or path.is_symlink():
            foreign.append(name)
    return foreign


def prepare(directory: str | os.PathLike, report_files: tuple[str, ...], figures: str, force: bool) -> Path:
    """Create ``directory`` if needed, check it is writable and the report's, remove leftovers.

    Raises :class:`IbcheckError` (one line) if it cannot be written, or if it holds files the
    report did not write and ``force`` is false.
    """
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(dir=path, prefix=".ibcheck-probe-")
        os.close(descriptor)
        os.unlink(probe)
        _remove_leftovers(path, figures)
        foreign = foreign_files(path, report_files, figures)
    except OSError as err:
        raise IbcheckError(f"cannot write the report to {str(path)!r}: {err.strerror or err}; "
                           "choose another folder with --out") from None
    if foreign and not force:
        raise IbcheckError(f"{str(path)!r} holds files the report did not write ({_short(foreign)}); choose "
                           "another folder with --out, or pass --force to write there anyway (those files are "
                           "left alone, index.html, report.md and report.json are replaced)")
    return path


def _write_manifest(directory: Path, files: set[str]) -> None:
    temporary = directory / f".{MANIFEST}.{uuid.uuid4().hex[:12]}.tmp"
    temporary.write_text(json.dumps({"schema": MANIFEST_SCHEMA, "files": sorted(files)}, indent=1) + "\n")
    os.replace(temporary, directory / MANIFEST)


def write_set(directory: Path, contents: dict[str, bytes], figures: str, pictures: dict[str, bytes]) -> None:
    """Write ``contents`` (file name -> bytes) and ``pictures`` (name -> PNG, into ``figures/``) as one set.

    See the module docstring for the order; any failure is an :class:`IbcheckError` naming the
    folder, and the staging folder is removed whatever happens.
    """
    staging = directory / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    written = set(contents) | {f"{figures}/{name}" for name in pictures}
    try:
        (staging / figures).mkdir(parents=True)
        for name, data in contents.items():
            (staging / name).write_bytes(data)
        for name, data in pictures.items():
            (staging / figures / name).write_bytes(data)
        wrong = [name for name in contents if (directory / name).is_dir() or (directory / name).is_symlink()]
        if (directory / figures).exists() and not (directory / figures).is_dir() or (directory / figures).is_symlink():
            wrong.append(figures)
        if wrong:
            raise IbcheckError(f"cannot write the report to {str(directory)!r}: {_short(wrong)} "
                               f"{'is' if len(wrong) == 1 else 'are'} not the report's (a folder or link where a "
                               "file belongs, or the reverse); remove or rename it")
        before = owned_files(directory, tuple(contents), figures)
        _write_manifest(directory, before | written)  # widened first: an interruption leaves nothing foreign
        (directory / figures).mkdir(exist_ok=True)
        for name in pictures:
            os.replace(staging / figures / name, directory / figures / name)
        for name in contents:
            os.replace(staging / name, directory / name)
        _write_manifest(directory, written)
        for stale in sorted(before - written):  # only files an earlier report wrote
            if stale.startswith(f"{figures}/"):
                with contextlib.suppress(OSError):
                    (directory / stale).unlink()
    except OSError as err:
        raise IbcheckError(f"cannot write the report to {str(directory)!r}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
