"""Write the web archive of sent issues to disk: a page per issue, ``index.html``, ``feed.xml``.

The archive is derived from what the state says was sent, so it can always be rebuilt: a run
that fails to write it leaves the delivery records as they are, and the next ``send`` writes
whatever is missing. Each file is written to a temporary name and renamed over the old one,
so a reader (or a web server) never sees half a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from curator.errors import ArchiveError
from curator.files import atomic_write


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
            if not path.is_symlink() and path.is_file() and path.read_bytes() == data:
                continue
            # A static site is meant to be read by the web server.
            atomic_write(path, data, mode=0o644)
        except OSError as exc:
            raise _error(path, exc) from exc
        changed.append(path)
    return changed


def _error(path: Path, exc: OSError) -> ArchiveError:
    return ArchiveError(
        f"cannot write the archive at {path}: {exc.strerror or exc}",
        hint="the issue was sent and recorded; fix the folder (archive.dir in feeds.yaml) "
        "and run `curator send` again to write the archive",
    )
