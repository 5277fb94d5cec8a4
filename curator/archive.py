"""The web archive of sent issues: which issues it holds (from the state), and writing it to
disk: a page per issue, ``index.html``, ``feed.xml``. The pages themselves are rendered by
:func:`curator.render.render_archive`.

The archive is derived from what the state says was sent, so it can always be rebuilt: a run
that fails to write it leaves the delivery records as they are, and the next ``send`` writes
whatever is missing. Each file is written to a temporary name and renamed over the old one,
so a reader (or a web server) never sees half a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from curator.errors import ArchiveError
from curator.files import atomic_write
from curator.models import ArchivedIssue, ArchivedPost, Config

if TYPE_CHECKING:
    from curator.store import Store


def archived_issues(store: Store) -> list[ArchivedIssue]:
    """Every period's latest issue that reached at least one recipient."""
    latest: dict[str, ArchivedIssue] = {}
    for row in store.history():  # oldest first, so a forced resend replaces its first round
        if row.sent == 0:
            continue
        issue = row.issue
        posts = tuple(
            ArchivedPost(p.title, p.link, p.feed_name) for p in store.issue_posts(issue.id)
        )
        latest[issue.period] = ArchivedIssue(
            issue.period, issue.subject, issue.built_at, issue.html, issue.question, posts
        )
    return list(latest.values())


def write_issue_archive(config: Config, store: Store) -> list[Path]:
    """Write the archive of sent issues (pages, index, Atom feed); return the files changed."""
    from curator.render import render_archive

    if config.archive_dir is None:
        return []
    files = render_archive(
        archived_issues(store),
        config.newsletter,
        templates_dir=config.templates_dir,
        archive_url=config.archive_url,
    )
    return write_archive(config.archive_dir, files)


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
