"""Recipients as people write them: every address is sent to, a bad one is named before
anything is built, and one recipient that cannot be built or is refused never blocks the others
(real aiosmtpd on 127.0.0.1, through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FeedServer, Item, rss, utc, write_config
from curator.cli import app
from curator.config import split_addresses
from curator.drafting import build_messages
from curator.models import Config, NewsletterConfig
from curator.store import Store
from mail_kit import Mailbox

RUNNER = CliRunner()
WEEK1 = "2026-11-26T08:00:00Z"  # 2026-W48
WEEK2 = "2026-12-03T08:00:00Z"  # 2026-W49
BAD = "is not an email address (an email address cannot have"

CONFIG = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: {to}
delivery:
  method: smtp
  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 3}}
feeds:
  - name: Ron
    url: {feed}
"""


def configure(folder: Path, feed: str, port: int, to: str) -> Path:
    return write_config(folder, CONFIG.format(to=to, port=port, feed=feed))


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = RUNNER.invoke(app, ["--config", str(config), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("to", "env", "args", "expected"),
    [
        ("[a@x.org, b@y.org]", None, (), ["a@x.org", "b@y.org"]),
        ('"you@example.org, me@example.org"', None, (), ["you@example.org", "me@example.org"]),
        ('"a@x.org; b@y.org"', None, (), ["a@x.org", "b@y.org"]),
        ("|\n    a@x.org\n    b@y.org\n", None, (), ["a@x.org", "b@y.org"]),
        ("'Bob <bob@x.org>, Ann <ann@x.org>'", None, (), ["bob@x.org", "ann@x.org"]),
        ("['\"Doe, Jane\" <j@x.org>', k@x.org]", None, (), ["j@x.org", "k@x.org"]),
        ("'\"Doe, Jane\" <j@x.org>; k@x.org'", None, (), ["j@x.org", "k@x.org"]),
        ("[z@x.org]", {"CURATOR_TO": "a@x.org;b@y.org"}, (), ["a@x.org", "b@y.org"]),
        ("[z@x.org]", {"CURATOR_TO": "a@x.org\nb@y.org, c@x.org"}, (),
         ["a@x.org", "b@y.org", "c@x.org"]),
        ("[z@x.org]", None, ("--to", "a@x.org; b@y.org", "--to", '"D, E" <e@x.org>'),
         ["a@x.org", "b@y.org", "e@x.org"]),
    ],
)  # fmt: skip
def test_every_spelling_of_the_recipients_reaches_every_address(  # noqa: PLR0917 - a table
    mailbox: Mailbox,
    feed: str,
    tmp_path: Path,
    to: str,
    env: dict[str, str] | None,
    args: tuple[str, ...],
    expected: list[str],
) -> None:
    """A list, a string, CURATOR_TO and --to, split on , ; and newlines, all reach each address."""
    config = configure(tmp_path, feed, mailbox.port, to)
    code, _, err = run(config, "send", "--now", WEEK1, *args, env=env)
    assert code == 0, err
    assert mailbox.copies() == dict.fromkeys(expected, 1)


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ('"Doe, Jane" <j@x.org>, k@x.org', ['"Doe, Jane" <j@x.org>', "k@x.org"]),
        ('"a \\" ; b" <a@x.org>;b@x.org', ['"a \\" ; b" <a@x.org>', "b@x.org"]),
        ("a@x.org,,\n\n; b@x.org ,", ["a@x.org", "b@x.org"]),
    ],
)
def test_the_splitter_keeps_quoted_names_whole(raw: str, parts: list[str]) -> None:
    """Separators inside a quoted display name do not split; empty parts are left out."""
    assert split_addresses(raw) == parts


@pytest.mark.parametrize(
    ("to", "env", "args", "named"),
    [
        ("[john..doe@x.org]", None, (), f"'john..doe@x.org' {BAD} two periods in a row)"),
        ("[.john@x.org]", None, (), "'.john@x.org' is not an email address (an email"),
        ("[john.@x.org]", None, (), f"'john.@x.org' {BAD} a period immediately before the @-sign)"),
        ("[bob@example..org]", None, (), "'bob@example..org' is not an email address"),
        ('"a@x.org, nope"', None, (), "newsletter.to: 'nope' is not an email address"),
        ("'Ann <a@x.org> junk'", None, (), "'Ann <a@x.org> junk' is not an email address"),
        ("[a@x.org]", {"CURATOR_TO": "a@x.org; bob@example..org"}, (),
         "CURATOR_TO: 'bob@example..org'"),
        ("[a@x.org]", None, ("--to", "a@x.org, .john@x.org"), "--to: '.john@x.org' is not"),
    ],
)  # fmt: skip
def test_a_bad_address_is_a_config_error_that_names_it(  # noqa: PLR0917 - a table
    mailbox: Mailbox,
    feed: str,
    tmp_path: Path,
    to: str,
    env: dict[str, str] | None,
    args: tuple[str, ...],
    named: str,
) -> None:
    """Each bad address exits 2 with one line naming it; nothing is sent, no traceback."""
    config = configure(tmp_path, feed, mailbox.port, to)
    code, _, err = run(config, "send", "--now", WEEK1, *args, env=env)
    assert code == 2, err
    assert named in err
    assert "Traceback" not in err
    assert "HeaderParseError" not in err
    assert mailbox.messages == []


def test_a_message_that_cannot_be_built_fails_alone() -> None:
    """An address the email package cannot write is one failed result; the others are built."""
    config = Config(
        path=Path("feeds.yaml"),
        feeds=(),
        newsletter=NewsletterConfig(from_addr="digest@example.org"),
    )
    built, failed = build_messages(
        config,
        subject="s",
        html="<p>h</p>",
        text="t",
        period="2026-W48",
        round_=1,
        recipients=["a@x.org", "bob@example..org", "c@x.org"],
        now=utc("2026-11-26T08:00"),
    )
    assert [m.recipient for m in built] == ["a@x.org", "c@x.org"]
    assert [(r.recipient, r.status) for r in failed] == [("bob@example..org", "failed")]


def test_a_refused_recipient_blocks_neither_the_others_nor_next_week(
    mailbox: Mailbox, feed_server: FeedServer, feed: str, tmp_path: Path
) -> None:
    """A 550 for one reader marks it failed; the others get this week's and next week's issue."""
    config = configure(tmp_path, feed, mailbox.port, "[ann@x.org, bob@x.org, cat@x.org]")
    mailbox.refuse = {"bob@x.org": "550 5.1.1 no such user"}
    code, _, err = run(config, "send", "--now", WEEK1)
    assert code == 1
    assert "failed for good: reader #2: 550" in err
    assert "bob@x.org" not in err
    assert mailbox.copies() == {"ann@x.org": 1, "cat@x.org": 1}

    feed_server.add(
        "/ron.xml",
        rss([Item("Lead again", "https://ron.example/n/", utc("2026-12-01T10:00"))]),
    )
    code, out, err = run(config, "send", "--now", WEEK2)
    assert mailbox.copies() == {"ann@x.org": 2, "cat@x.org": 2}
    assert "2026-W49" in out
    assert "completing" not in out  # the refused address is not owed anything more


def test_a_pending_address_removed_from_the_config_is_owed_nothing(
    mailbox: Mailbox, feed_server: FeedServer, feed: str, tmp_path: Path
) -> None:
    """A pending row left by an unbuildable address is closed once the address is removed, and
    next week goes out to everyone else."""
    config = configure(tmp_path, feed, mailbox.port, "[ann@x.org, cat@x.org]")
    built = utc("2026-11-26T08:00")
    with Store.open(tmp_path / ".curator" / "state.db") as store:
        store.freeze_issue(
            period="2026-W48",
            built_at=built,
            subject="Lead Weekly",
            html="<p>x</p>",
            text="x",
            question=None,
            question_reason=None,
            post_ids=[],
            recipients=["ann@x.org", "bob@example..org"],
        )
        issue = store.latest_issue("2026-W48")
        assert issue is not None
        store.mark_delivery(issue.id, "ann@x.org", "sent", "250 OK", built)
    feed_server.add(
        "/ron.xml",
        rss([Item("Lead again", "https://ron.example/n/", utc("2026-12-01T10:00"))]),
    )
    code, _, err = run(config, "send", "--now", WEEK2)
    assert code == 0, err
    assert "Traceback" not in err
    assert mailbox.copies() == {"ann@x.org": 1, "cat@x.org": 1}
    with Store.open(tmp_path / ".curator" / "state.db") as store:
        rows = {d.recipient: d.status for d in store.deliveries(issue.id)}
    assert rows == {"ann@x.org": "sent", "bob@example..org": "failed"}
