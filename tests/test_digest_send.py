"""The digest through the CLI: the archive written on every send, empty weeks, the question
command and preview --open, against feeds on a real local HTTP server."""

from __future__ import annotations

import email
import email.policy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import FeedServer, Item, rss, run_cli, utc, write_config
from curator.store import Store

ATOM = "{http://www.w3.org/2005/Atom}"
WEEK_48 = "2026-11-26T08:00:00Z"
WEEK_49 = "2026-12-02T08:00:00Z"

CONFIG = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: [ann@example.org, bob@example.org]
  empty_week: {empty_week}
feeds:
  - name: Ron
    url: {ron}
questions:
  - Are you leading or managing?
  - text: Who on your team needs more trust from you?
    themes: [delegation, team]
  - How are you going to do it?
{extra}"""


run = run_cli


@pytest.fixture
def server(feed_server: FeedServer) -> FeedServer:
    feed_server.add(
        "/ron.xml",
        rss([
            Item("Lead from the middle", "https://ron.example/middle/", utc("2026-11-24T10:00")),
            Item("Seven habits of teams", "https://ron.example/teams/", utc("2026-11-20T10:00")),
            Item("An old post worth another look", "https://ron.example/old/",
                 utc("2026-10-01T10:00")),
        ]),
    )  # fmt: skip
    return feed_server


def make_config(
    folder: Path, server: FeedServer, *, empty_week: str = "skip", extra: str = ""
) -> Path:
    text = CONFIG.format(ron=server.url("/ron.xml"), empty_week=empty_week, extra=extra)
    return write_config(folder, text)


def text_parts(outbox: Path, pattern: str) -> list[str]:
    texts = []
    for path in sorted(outbox.glob(pattern)):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        texts.append(" ".join(body.get_content().split()))
    return texts


def test_each_send_writes_the_archive_page_index_and_atom_feed(
    server: FeedServer, tmp_path: Path
) -> None:
    """Every sent issue gets a page; index.html and feed.xml list every issue, newest first."""
    config = make_config(tmp_path, server)
    assert run(config, "send", "--now", WEEK_48)[0] == 0
    server.add(
        "/ron.xml", rss([Item("A new post", "https://ron.example/new/", utc("2026-11-30T09:00"))])
    )
    code, out, err = run(config, "send", "--now", WEEK_49)
    assert code == 0, err
    assert "archive:" in out

    archive = tmp_path / "archive"
    assert {p.name for p in archive.iterdir()} == {
        "2026-W48.html", "2026-W49.html", "index.html", "feed.xml",
    }  # fmt: skip
    page = (archive / "2026-W48.html").read_text()
    assert 'href="index.html"' in page
    assert "Lead from the middle" in page
    assert "https://ron.example/middle/" in page
    index = (archive / "index.html").read_text()
    assert index.index("2026-W49.html") < index.index("2026-W48.html")

    feed = ET.parse(archive / "feed.xml").getroot()
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}link").get("href") for e in entries] == [  # type: ignore[union-attr]  # every entry has a link; None would fail the test anyway
        "2026-W49.html", "2026-W48.html",
    ]  # fmt: skip
    ids = {e.findtext(f"{ATOM}id") for e in entries}
    assert len(ids) == 2
    assert all(i and i.startswith("urn:uuid:") for i in ids)
    content = entries[1].findtext(f"{ATOM}content") or ""
    assert '<a href="https://ron.example/middle/">Lead from the middle</a>' in content


def test_dry_runs_and_test_copies_leave_the_archive_alone(
    server: FeedServer, tmp_path: Path
) -> None:
    """Only an issue really sent is archived."""
    config = make_config(tmp_path, server)
    assert run(config, "send", "--dry-run", "--now", WEEK_48)[0] == 0
    assert run(config, "send", "--to", "me@example.net", "--now", WEEK_48)[0] == 0
    assert not (tmp_path / "archive").exists()


def test_archive_can_be_turned_off_or_moved(server: FeedServer, tmp_path: Path) -> None:
    """archive.enabled: false writes nothing; archive.dir moves it."""
    config = make_config(tmp_path, server, extra="archive:\n  enabled: false\n")
    assert run(config, "send", "--now", WEEK_48)[0] == 0
    assert not (tmp_path / "archive").exists()
    other = tmp_path / "moved"
    other.mkdir()
    config = make_config(other, server, extra="archive:\n  dir: site/issues\n")
    assert run(config, "send", "--now", WEEK_48)[0] == 0
    assert (other / "site" / "issues" / "index.html").is_file()


def test_a_disk_error_in_the_archive_keeps_delivery_records_true(
    server: FeedServer, tmp_path: Path
) -> None:
    """The archive failing says so clearly and exits 1; deliveries stay recorded as sent,
    and the next send writes the archive without sending anything again."""
    (tmp_path / "blocker").write_text("a file where a folder should be")
    config = make_config(tmp_path, server, extra="archive:\n  dir: blocker/archive\n")
    code, out, err = run(config, "send", "--now", WEEK_48)
    assert code == 1
    assert "cannot write the archive at" in err
    assert "the issue was sent and recorded" in err
    assert "sent 2026-W48" in out
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    with Store.open(tmp_path / ".curator" / "state.db") as store:
        (row,) = store.history()
        assert (row.sent, row.failed, row.pending) == (2, 0, 0)

    (tmp_path / "blocker").unlink()
    # The outbox rewrites a message under its own name, so a count alone cannot see a
    # second copy: empty it, and whatever the next run writes is a second copy.
    for path in (tmp_path / "outbox").glob("*.eml"):
        path.unlink()
    code, out, _ = run(config, "send", "--now", "2026-11-26T09:00:00Z")
    assert code == 0
    assert "already sent" in out
    assert (tmp_path / "blocker" / "archive" / "2026-W48.html").is_file()
    assert list((tmp_path / "outbox").glob("*.eml")) == []


def test_empty_week_question_sends_only_the_question(server: FeedServer, tmp_path: Path) -> None:
    """empty_week: question sends the question alone and says there were no new posts."""
    config = make_config(tmp_path, server, empty_week="question")
    assert run(config, "send", "--now", WEEK_48)[0] == 0
    code, _, err = run(config, "send", "--now", "2027-03-01T08:00:00Z")
    assert code == 0, err
    (text, _) = text_parts(tmp_path / "outbox", "*2027-w09*")
    assert "No new posts from your writers this week" in text
    # Week 48 was about teams, so it took the team question; this week takes the first.
    assert "THIS WEEK'S QUESTION Are you leading or managing?" in text
    assert "Lead from the middle" not in text


def test_empty_week_archive_resurfaces_a_post_never_featured(
    server: FeedServer, tmp_path: Path
) -> None:
    """empty_week: archive brings back an older post no issue carried, with the question."""
    config = make_config(tmp_path, server, empty_week="archive")
    assert run(config, "send", "--now", WEEK_48)[0] == 0
    code, _, err = run(config, "send", "--now", "2027-03-01T08:00:00Z")
    assert code == 0, err
    (text, _) = text_parts(tmp_path / "outbox", "*2027-w09*")
    assert "here is one from the archive" in text
    assert "An old post worth another look" in text
    assert "Lead from the middle" not in text


def test_questions_shows_last_use_next_and_the_stored_reason(
    server: FeedServer, tmp_path: Path
) -> None:
    """`curator questions` marks the one used and the next; the send stored why it chose."""
    config = make_config(tmp_path, server)
    assert run(config, "send", "--now", WEEK_48)[0] == 0
    code, out, err = run(config, "questions", "--now", WEEK_49)
    assert code == 0
    assert "2026-W48" in out
    assert any(line.startswith("next\t") for line in out.splitlines())
    assert "next:" in err  # the reason, a note: on stderr off a terminal
    with Store.open(tmp_path / ".curator" / "state.db") as store:
        (reason,) = store.db.execute("SELECT reason FROM question_uses").fetchone()
    # Week 48's posts are about teams: the themed question won on fit, and says so.
    assert reason.startswith("best fit to this week's posts (themes: delegation, team;")


def test_preview_open_opens_the_html_in_the_browser(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """preview --open hands the written issue.html to the default browser as a file URL."""
    opened: list[str] = []
    monkeypatch.setattr("curator.cli.webbrowser.open", lambda url, *a, **k: opened.append(url))
    config = make_config(tmp_path, server)
    code, _, err = run(config, "preview", "--open", "--now", WEEK_48)
    assert code == 0, err
    assert opened == [(tmp_path / "preview" / "issue.html").resolve().as_uri()]
    assert run(config, "preview", "--now", WEEK_48)[0] == 0
    assert len(opened) == 1
