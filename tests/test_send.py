"""End to end: `curator send` against feeds on a real local HTTP server, through the CLI."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import FeedServer, Item, rss, run_cli, utc, write_config

run = run_cli


def read_outbox(folder: Path) -> dict[str, EmailMessage]:
    messages = {}
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages[path.name] = message
    return messages


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


CONFIG = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: [ann@example.org, bob@example.org]
feeds:
  - name: Ron
    url: {ron}
  - name: Mike
    url: {mike}
questions:
  - Are you leading or managing?
  - Is there an area of your life you are managing that you need to rise up and lead?
  - How are you going to do it?
"""


@pytest.fixture
def site(feed_server: FeedServer, tmp_path: Path) -> tuple[FeedServer, Path]:
    feed_server.add(
        "/ron.xml",
        rss([
            Item("Lead from the middle", "https://ron.example/middle/", utc("2026-11-24T10:00")),
            Item("Seven habits of teams", "https://ron.example/teams/", utc("2026-11-20T10:00")),
            Item("An old post", "https://ron.example/old/", utc("2026-10-01T10:00")),
        ]),
    )  # fmt: skip
    feed_server.add(
        "/mike.xml",
        rss([Item("Plan your week", "https://mike.example/plan", utc("2026-11-23T07:00"))]),
    )
    config = write_config(
        tmp_path, CONFIG.format(ron=feed_server.url("/ron.xml"), mike=feed_server.url("/mike.xml"))
    )
    return feed_server, config


def test_send_writes_one_multipart_message_per_recipient(site: tuple[FeedServer, Path]) -> None:
    """The outbox holds one .eml per recipient with every post, source, link and the question."""
    _, config = site
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    messages = read_outbox(config.parent / "outbox")
    assert len(messages) == 2
    recipients = sorted(str(m["To"]) for m in messages.values())
    assert recipients == ["ann@example.org", "bob@example.org"]
    for message in messages.values():
        assert message.get_content_type() == "multipart/alternative"
        assert "Lead Weekly" in str(message["Subject"])
        assert message["Message-ID"].endswith("@example.org>")
        assert message["List-Id"]
        text, html = parts(message)
        for part in (text, html):
            for title in ("Lead from the middle", "Seven habits of teams", "Plan your week"):
                assert title in part
            for link in ("https://ron.example/middle/", "https://mike.example/plan"):
                assert link in part
            assert "Ron" in part and "Mike" in part
            assert "Are you leading or managing?" in part
            assert "An old post" not in part


def test_second_send_in_same_week_delivers_nothing(site: tuple[FeedServer, Path]) -> None:
    """A second send in the same ISO week writes nothing, says so and exits 0."""
    _, config = site
    assert run(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 0
    before = set((config.parent / "outbox").iterdir())
    code, out, _ = run(config, "send", "--now", "2026-11-28T18:00:00Z")
    assert code == 0
    assert "already sent" in out
    assert set((config.parent / "outbox").iterdir()) == before


def test_next_week_has_next_question_and_only_new_posts(site: tuple[FeedServer, Path]) -> None:
    """Week two carries the second question and only the posts published since week one."""
    server, config = site
    assert run(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 0
    server.add(
        "/ron.xml",
        rss([
            Item("A brand new post", "https://ron.example/new/", utc("2026-11-30T09:00")),
            Item("Lead from the middle", "https://ron.example/middle/", utc("2026-11-24T10:00")),
        ]),
    )  # fmt: skip
    code, _, err = run(config, "send", "--now", "2026-12-02T08:00:00Z")
    assert code == 0, err
    week2 = [m for n, m in read_outbox(config.parent / "outbox").items() if "2026-w49" in n]
    assert len(week2) == 2
    text, html = parts(week2[0])
    assert "A brand new post" in text and "A brand new post" in html
    assert "Lead from the middle" not in text
    assert "Plan your week" not in text
    assert "rise up and lead" in " ".join(text.split())


def test_conditional_requests_follow_the_first_fetch(
    site: tuple[FeedServer, Path],
) -> None:
    """After the first fetch, curator sends the validators the server gave it."""
    server, config = site
    server.routes["/mike.xml"].etag = '"v1"'
    assert run(config, "fetch", "--now", "2026-11-26T08:00:00Z")[0] == 0
    assert run(config, "fetch", "--now", "2026-11-26T09:00:00Z")[0] == 0
    first, second = server.hits("/mike.xml")
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == '"v1"'


def test_a_broken_feed_is_reported_and_skipped(site: tuple[FeedServer, Path]) -> None:
    """One feed answering 500 does not stop the issue; its failure is said on stderr."""
    server, config = site
    server.routes["/mike.xml"].status = 500
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 0
    assert "Mike" in err and "500" in err
    message = next(iter(read_outbox(config.parent / "outbox").values()))
    text, _ = parts(message)
    assert "Lead from the middle" in text
    assert "Could not be read this week: Mike" in text


def test_every_feed_failing_with_nothing_new_exits_1(site: tuple[FeedServer, Path]) -> None:
    """When every feed fails and nothing is new, nothing is sent and the exit code is 1."""
    server, config = site
    server.routes["/mike.xml"].status = 500
    server.routes["/ron.xml"].status = 404
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 1
    assert "every feed failed" in err
    assert not (config.parent / "outbox").exists()


def test_dry_run_writes_but_records_nothing(site: tuple[FeedServer, Path]) -> None:
    """--dry-run writes to the outbox and says where; a real send afterwards still sends."""
    _, config = site
    code, out, _ = run(config, "send", "--dry-run", "--now", "2026-11-26T08:00:00Z")
    assert code == 0 and "dry run" in out
    assert len(list((config.parent / "outbox").glob("dry-run-*.eml"))) == 2
    assert "no issues yet" in run(config, "history")[2]
    code, out, _ = run(config, "send", "--now", "2026-11-26T09:00:00Z")
    assert code == 0 and "sent 2026-W48" in out


def test_to_sends_a_test_copy_only(site: tuple[FeedServer, Path]) -> None:
    """--to sends one copy to that address alone and records nothing."""
    _, config = site
    code, _, _ = run(config, "send", "--to", "me@example.net", "--now", "2026-11-26T08:00:00Z")
    assert code == 0
    messages = list(read_outbox(config.parent / "outbox").values())
    assert [str(m["To"]) for m in messages] == ["me@example.net"]
    assert "no issues yet" in run(config, "history")[2]


def test_force_sends_the_period_again_with_the_same_question(
    site: tuple[FeedServer, Path],
) -> None:
    """--force builds the period's issue again for everyone; the question does not change."""
    _, config = site
    assert run(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 0
    code, out, _ = run(config, "send", "--force", "--now", "2026-11-26T09:00:00Z")
    assert code == 0, out
    messages = read_outbox(config.parent / "outbox")
    assert len([n for n in messages if "-r2-" in n]) == 2
    for message in messages.values():
        assert "Are you leading or managing?" in parts(message)[0]


def test_preview_writes_three_files_and_records_nothing(site: tuple[FeedServer, Path]) -> None:
    """preview writes issue.html, issue.txt and issue.eml and leaves no issue behind."""
    _, config = site
    code, _, err = run(config, "preview", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    folder = config.parent / "preview"
    assert {p.name for p in folder.iterdir()} == {"issue.html", "issue.txt", "issue.eml"}
    assert "Lead from the middle" in (folder / "issue.txt").read_text()
    assert "no issues yet" in run(config, "history")[2]


def test_the_preview_names_no_reader(site: tuple[FeedServer, Path]) -> None:
    """The preview (which the weekly workflow keeps as a run artifact) is addressed to a
    placeholder: no file in it holds a recipient's address."""
    _, config = site
    code, _, err = run(config, "preview", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    for path in (config.parent / "preview").iterdir():
        text = path.read_text(encoding="utf-8")
        assert "ann@example.org" not in text and "bob@example.org" not in text, path.name
    assert "To: reader@example.invalid" in (config.parent / "preview" / "issue.eml").read_text()


def test_empty_week_with_skip_sends_nothing(site: tuple[FeedServer, Path]) -> None:
    """With no new posts and empty_week: skip, nothing is sent, a line says why, exit 0."""
    _, config = site
    code, out, _ = run(config, "send", "--now", "2027-03-01T08:00:00Z")
    assert code == 0
    assert "nothing to send" in out
    assert not (config.parent / "outbox").exists()


def test_to_with_a_comma_list_sends_one_copy_to_each(site: tuple[FeedServer, Path]) -> None:
    """`--to 'a, b'` sends a test copy to both addresses, never silently to the first alone."""
    _, config = site
    code, _, err = run(
        config, "send", "--to", "me@example.net; you@example.net", "--now", "2026-11-26T08:00:00Z"
    )
    assert code == 0, err
    messages = read_outbox(config.parent / "outbox").values()
    assert sorted(str(m["To"]) for m in messages) == ["me@example.net", "you@example.net"]


def test_an_unsubscribed_reader_gets_nothing_even_without_a_replies_section(
    site: tuple[FeedServer, Path],
) -> None:
    """A reader who unsubscribed by reply stays out of sends and dry runs after the replies
    section is gone; only an explicit --to test copy reaches the address."""
    from datetime import datetime

    from curator.store import Store

    _, config = site
    when = datetime.fromisoformat("2026-11-25T08:00:00+00:00")
    with Store.open(config.parent / ".curator" / "state.db") as store:
        bob = store.reader_ids(["bob@example.org"], when)["bob@example.org"]
        store.record_reply_message("<stop@x>", "unsubscribe", when, reader_id=bob, unsubscribe=True)
    code, out, err = run(config, "send", "--dry-run", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    dry = [m["To"] for m in read_outbox(config.parent / "outbox").values()]
    assert dry == ["ann@example.org"]
    assert "1 reader unsubscribed, left out" in out and "bob@" not in out + err
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    sent = sorted(m["To"] for m in read_outbox(config.parent / "outbox").values())
    assert sent == ["ann@example.org", "ann@example.org"]  # the dry run's file and the real one
    code, _, err = run(config, "send", "--to", "bob@example.org", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    assert "bob@example.org" in [m["To"] for m in read_outbox(config.parent / "outbox").values()]


def test_a_template_without_the_personal_place_is_a_warning(
    site: tuple[FeedServer, Path],
) -> None:
    """With replies configured, an issue template of the user's own that lacks the personal
    marker still sends, and says that readers' answers are not shown."""
    _, config = site
    mine = config.parent / "mine"
    mine.mkdir()
    (mine / "issue.html.j2").write_text("<html><body><p>{{ question }}</p></body></html>\n")
    (config.parent / "replies" / "new").mkdir(parents=True)
    config.write_text(
        config.read_text()
        + "templates: mine\nreplies: {address: reflect@example.org, maildir: replies}\n"
    )
    code, _, err = run(config, "send", "--now", "2026-11-26T08:00:00Z")
    assert code == 0, err
    assert "no place for readers' own earlier answers" in err


def test_with_replies_the_preview_and_dry_run_show_the_invitation_to_reply(
    site: tuple[FeedServer, Path],
) -> None:
    """A preview and a dry run look like the copies readers get: the invitation to reply and
    the way to stop are there, the place of a reader's own block is not left as a marker."""
    _, config = site
    (config.parent / "replies" / "new").mkdir(parents=True)
    (config.parent / "replies" / "cur").mkdir()
    config.write_text(
        config.read_text() + "replies: {address: reflect@example.org, maildir: replies}\n"
    )
    assert run(config, "preview", "--now", "2026-11-26T08:00:00Z")[0] == 0
    for name in ("issue.html", "issue.txt"):
        shown = (config.parent / "preview" / name).read_text()
        assert "Reply to this email with your answer" in shown and "stop" in shown, name
        assert "curator:personal" not in shown, name
    assert run(config, "send", "--dry-run", "--now", "2026-11-26T08:00:00Z")[0] == 0
    for message in read_outbox(config.parent / "outbox").values():
        text, html = parts(message)
        assert "Reply to this email with your answer" in text and "curator:personal" not in html
        assert message["Reply-To"] is None  # only a frozen issue has a reader's token
