"""The one atomic write: whole files or none, never through a planted symbolic link."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import FeedServer, Item, rss, run_cli, utc, write_config
from curator.app import run_preview
from curator.archive import write_archive
from curator.config import load_config
from curator.deliver import OutboxSender, build_message
from curator.errors import PreviewError
from curator.files import atomic_write
from curator.models import NewsletterConfig


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """The target holds the new bytes and the folder holds nothing else."""
    target = tmp_path / "page.html"
    target.write_bytes(b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    """A link planted at the target becomes a plain file; what it pointed at is untouched."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "out.eml"
    target.symlink_to(victim)
    atomic_write(target, b"message")
    assert victim.read_bytes() == b"precious"
    assert not target.is_symlink()
    assert target.read_bytes() == b"message"


def test_a_refusal_before_the_rename_leaves_the_old_file(tmp_path: Path) -> None:
    """What ``before_replace`` raises stops the write: old bytes kept, temporary gone."""
    target = tmp_path / "feeds.yaml"
    target.write_bytes(b"old")

    def refuse(temporary: Path) -> None:
        assert temporary.read_bytes() == b"new"
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        atomic_write(target, b"new", before_replace=refuse)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.yaml"]


@pytest.mark.parametrize(("mode", "expected"), [(None, 0o600), (0o644, 0o644)])
def test_the_mode_is_private_unless_asked(tmp_path: Path, mode: int | None, expected: int) -> None:
    """By default only the owner may read what curator writes; the archive asks for 0644."""
    target = tmp_path / "f"
    atomic_write(target, b"x", mode=mode)
    assert stat.S_IMODE(target.stat().st_mode) == expected


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("precious", encoding="utf-8")
    return victim


def test_the_archive_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """An archive page whose path is a symlink is replaced, the link's target kept."""
    victim = _victim(tmp_path)
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "index.html").symlink_to(victim)
    changed = write_archive(folder, {"index.html": "<p>issues</p>"})
    assert changed == [folder / "index.html"]
    assert victim.read_text(encoding="utf-8") == "precious"
    assert (folder / "index.html").read_text(encoding="utf-8") == "<p>issues</p>"


def test_the_outbox_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """An outbox message whose file is a symlink is replaced, the link's target kept."""
    victim = _victim(tmp_path)
    outgoing = build_message(
        newsletter=NewsletterConfig(title="T", from_addr="Ed <ed@example.org>"),
        recipient="ann@example.org",
        subject="S",
        html="<p>x</p>",
        text="x",
        period="2026-W10",
        round_=1,
        date=datetime(2026, 3, 2, tzinfo=UTC),
    )
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / f"{outgoing.name}.eml").symlink_to(victim)
    (result,) = OutboxSender(outbox).deliver([outgoing])
    assert result.status == "sent"
    assert victim.read_text(encoding="utf-8") == "precious"
    assert b"ann@example.org" in (outbox / f"{outgoing.name}.eml").read_bytes()


PREVIEW_CONFIG = """\
newsletter:
  to: [ann@example.org]
feeds:
  - name: Ron
    url: {feed}
"""


def _preview_config(feed_server: FeedServer, folder: Path) -> Path:
    feed = feed_server.add(
        "/ron.xml", rss([Item("Lead well", "https://ron.example/a", utc("2026-11-25T10:00"))])
    )
    return write_config(folder, PREVIEW_CONFIG.format(feed=feed))


@pytest.mark.parametrize("name", ["issue.html", "issue.txt", "issue.eml"])
def test_the_preview_never_writes_through_a_planted_link(
    feed_server: FeedServer, tmp_path: Path, name: str
) -> None:
    """A preview file whose path is a symlink is replaced by the preview, the target kept."""
    victim = _victim(tmp_path)
    config = _preview_config(feed_server, tmp_path)
    out = tmp_path / "preview"
    out.mkdir()
    (out / name).symlink_to(victim)
    code, _, err = run_cli(config, "preview", "--out", str(out), "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (out / name).is_symlink()
    assert "Lead well" in (out / name).read_text(encoding="utf-8")


def test_a_preview_that_cannot_be_written_is_a_preview_error(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A preview folder that is a file fails as a PreviewError from the OSError, not as a
    delivery error."""
    config = load_config(_preview_config(feed_server, tmp_path), env={})
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    with pytest.raises(PreviewError, match="cannot write the preview") as caught:
        run_preview(config, datetime(2026, 11, 26, 8, tzinfo=UTC), blocker / "preview")
    assert isinstance(caught.value.__cause__, OSError)
