"""Write the web archive of sent issues to disk: a page per issue, ``index.html``, ``feed.xml``.

The archive is derived from what the state says was sent, so it can always be rebuilt: a run
that fails to write it leaves the delivery records as they are, and the next ``send`` writes
whatever is missing. Each file is written to a temporary name and renamed over the old one,
so a reader (or a web server) never sees half a page.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from curator.errors import ArchiveError


def write_archive(folder: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` (name -> text) under ``folder``; return the paths that changed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _error(folder, exc) from exc
    changed: list[Path] = []
    for name, text in sorted(files.items()):
        path = folder / name
        data = text.encode("utf-8")
        try:
            if path.is_file() and path.read_bytes() == data:
                continue
            _replace(path, data)
        except OSError as exc:
            raise _error(path, exc) from exc
        changed.append(path)
    return changed


def _replace(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)  # a static site is meant to be read by the web server
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _error(path: Path, exc: OSError) -> ArchiveError:
    return ArchiveError(
        f"cannot write the archive at {path}: {exc.strerror or exc}",
        hint="the issue was sent and recorded; fix the folder (archive.dir in feeds.yaml) "
        "and run `curator send` again to write the archive",
    )
