"""The reflection loop through `curator send`, end to end and offline: a real feed server, real
SMTP delivery (aiosmtpd), replies appended to a real IMAP server (pymap over STARTTLS) and
collected by `send` itself, and a SIGKILL between collecting and sending."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from conftest import FeedServer, Item, free_port, rss, run_cli, utc, write_config
from curator.store import Store
from mail_kit import Mailbox, curator_env, mail_server, start_curator
from reply_kit import PASSWORD, USER, ImapServer, reply_email, running_imap

WEEKS = ("2026-11-26T08:00:00Z", "2026-12-03T08:00:00Z", "2026-12-10T08:00:00Z")
ANN, BOB = "ann@example.com", "bob@example.com"
ANN_ANSWER = "I will hand the budget review to Sam."
BOB_ANSWER = "Delegate the hiring loop."
# What no line `curator send` prints may hold: readers' addresses and what they wrote.
PRIVATE = (ANN, BOB, ANN_ANSWER, BOB_ANSWER, "budget review", "hiring loop")

CONFIG = """\
newsletter:
  title: Lead Weekly
  from: "Lead Weekly <digest@example.org>"
  to: [{ann}, "Bob <{bob}>"]
delivery:
  method: smtp
  smtp: {{host: 127.0.0.1, port: {smtp}, security: none, timeout: 5}}
feeds:
  - name: Ron
    url: {feed}
replies:
  address: reflect@example.org
  imap: {{host: 127.0.0.1, port: {imap}, tls: starttls, username: {user}, folder: {folder},
          timeout: 5}}
"""


@pytest.fixture(scope="module")
def imap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    with running_imap(tmp_path_factory.mktemp("imap")) as server:
        yield server


class Loop:
    """One newsletter with two readers: its config, feed, SMTP and IMAP servers."""

    def __init__(
        self, folder: Path, feeds: FeedServer, box: Mailbox, imap: ImapServer, imap_port: int
    ) -> None:
        self.feeds, self.box, self.imap, self.imap_port = feeds, box, imap, imap_port
        self.posts: list[Item] = []
        self.mail_folder = imap.new_folder()
        feed = feeds.add("/ron.xml", rss([]))
        self.config = write_config(
            folder,
            CONFIG.format(
                ann=ANN, bob=BOB, smtp=box.port, feed=feed, imap=imap_port, user=USER,
                folder=self.mail_folder,
            ),
        )  # fmt: skip
        self.state = folder / ".curator" / "state.db"

    def new_post(self, week: int) -> None:
        """A post published two days before week ``week``'s send."""
        published = utc(WEEKS[week - 1][:-1]) - timedelta(days=2)
        link = f"https://ron.example/p{week}/"
        self.posts.append(Item(f"Post of week {week}", link, published))
        self.feeds.add("/ron.xml", rss(self.posts))

    def send(self, week: int) -> tuple[int, str, str]:
        """`curator send` at week ``week``'s moment, with a new post; the output is private."""
        self.new_post(week)
        code, out, err = run_cli(self.config, "send", "--now", WEEKS[week - 1])
        assert_private(out, err)
        return code, out, err

    def copies(self, reader: str) -> list[EmailMessage]:
        """Every message the SMTP server accepted for ``reader``, oldest first."""
        return [parse(raw) for raw in self.box.to(reader)]

    def reply(self, to: str, text: str, sender: str, week: int) -> None:
        """A reply to ``to`` delivered into the IMAP mailbox a day after week ``week``'s send."""
        day = utc(WEEKS[week - 1][:-1]) + timedelta(days=1)
        raw = reply_email(
            to,
            text,
            sender=sender,
            message_id=f"<{sender}-{week}-{len(text)}@mail.example.com>",
            date=format_datetime(day),
        )
        self.imap.append(self.mail_folder, raw)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, imap: ImapServer) -> dict[str, str]:
    """The IMAP password, and the test CA trusted for the STARTTLS certificate."""
    extra = {"CURATOR_IMAP_PASSWORD": PASSWORD, "SSL_CERT_FILE": str(imap.ca_file)}
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    return extra


@pytest.fixture
def loop(
    tmp_path: Path, feed_server: FeedServer, imap: ImapServer, env: dict[str, str]
) -> Iterator[Loop]:
    with mail_server() as box:
        yield Loop(tmp_path, feed_server, box, imap, imap.port)


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts, decoded, with runs of white space made one space."""
    found = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            found[part.get_content_type()] = " ".join(str(part.get_content()).split())
    return found["text/plain"], found["text/html"]


def assert_private(out: str, err: str) -> None:
    """Nothing printed names a reader or repeats a reply."""
    printed = (out + err).splitlines()
    leaks = [word for word in PRIVATE for line in printed if word.lower() in line.lower()]
    assert not leaks, f"send printed private words {leaks}:\n{out}\n{err}"


def test_two_readers_three_weeks_through_send_smtp_and_imap(loop: Loop) -> None:
    """Week 2's copy gives each reader back only their own week-1 answer (HTML and text); a
    stop by reply leaves Bob out of week 3; readers and journal show what happened."""
    code, _, err = loop.send(1)
    assert code == 0, err
    (ann1,), (bob1,) = loop.copies(ANN), loop.copies(BOB)
    ann_reply_to, bob_reply_to = str(ann1["Reply-To"]), str(bob1["Reply-To"])
    assert ann_reply_to != bob_reply_to
    assert ann_reply_to.startswith("reflect+") and bob_reply_to.startswith("reflect+")
    loop.reply(ann_reply_to, ANN_ANSWER, ANN, 1)
    loop.reply(bob_reply_to, BOB_ANSWER, BOB, 1)

    code, out, err = loop.send(2)
    assert code == 0, err
    assert "replies: 2 new answer(s)" in out
    ann2, bob2 = loop.copies(ANN)[-1], loop.copies(BOB)[-1]
    for part in bodies(ann2):
        assert ANN_ANSWER in part and BOB_ANSWER not in part
    for part in bodies(bob2):
        assert BOB_ANSWER in part and ANN_ANSWER not in part
    assert "curator:personal" not in " ".join((*bodies(ann2), *bodies(bob2)))
    loop.reply(str(bob2["Reply-To"]), "stop", BOB, 2)

    code, out, err = loop.send(3)
    assert code == 0, err
    assert "1 unsubscribe(s)" in out
    assert len(loop.copies(BOB)) == 2
    assert len(loop.copies(ANN)) == 3
    for part in bodies(loop.copies(ANN)[-1]):
        assert "Post of week 3" in part and BOB_ANSWER not in part

    code, out, err = run_cli(loop.config, "readers")
    assert code == 0, err
    # The columns: #, address, in to, delivered, failed, last reply, unsubscribed.
    rows = {line.split("\t")[1]: line.split("\t") for line in out.splitlines() if "@" in line}
    assert rows[ANN][-1] == "no"
    assert rows[BOB][-1] == WEEKS[2][:10]
    code, out, err = run_cli(loop.config, "journal", "--format", "json")
    assert code == 0, err
    journal = json.loads(out)
    assert [(a["reader"], a["text"]) for a in journal if a["reader"] == ANN] == [(ANN, ANN_ANSWER)]


def test_an_unreachable_mailbox_is_a_warning_and_the_issue_goes_out(
    tmp_path: Path, feed_server: FeedServer, imap: ImapServer, env: dict[str, str]
) -> None:
    """With the IMAP port closed, send warns about the mailbox, delivers to both readers with
    their Reply-To, and exits 0."""
    with mail_server() as box:
        loop = Loop(tmp_path, feed_server, box, imap, imap_port=free_port())
        code, _, err = loop.send(1)
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if line.startswith("replies: imap:")]
    assert f"127.0.0.1:{loop.imap_port}/{loop.mail_folder}" in warning
    assert box.copies() == {ANN: 1, BOB: 1}
    assert all(str(m["Reply-To"]).startswith("reflect+") for m in loop.copies(ANN))


def test_sigkill_between_collecting_and_sending_loses_no_reply_and_sends_no_copy_twice(
    loop: Loop, env: dict[str, str]
) -> None:
    """A send killed while the server holds week 2's first copy has already stored the reply
    and frozen each reader's block; the rerun delivers each reader once, with that block."""
    code, _, err = loop.send(1)
    assert code == 0, err
    loop.reply(str(loop.copies(ANN)[0]["Reply-To"]), ANN_ANSWER, ANN, 1)
    loop.new_post(2)
    loop.box.hold_at = loop.box.data_seen + 1
    process = start_curator(loop.config, "send", "--now", WEEKS[1], env=curator_env(env))
    try:
        assert loop.box.held.wait(60), "curator never reached week 2's first copy"
    finally:
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert_private(out, err)
    loop.box.release.set()
    assert loop.box.copies() == {ANN: 1, BOB: 1}

    with Store.open(loop.state) as store:
        assert [a.text for a in store.answers(ANN)] == [ANN_ANSWER]
        week2 = store.latest_issue("2026-W49")
        assert week2 is not None
        # Keyed by each recipient as `to` spells it ("Bob <bob@example.com>").
        frozen = {
            next(r for r in (ANN, BOB) if r in to): copy
            for to, copy in store.personal_copies(week2.id).items()
        }
        assert [d.status for d in store.deliveries(week2.id)] == ["pending", "pending"]
    assert ANN_ANSWER in " ".join(frozen[ANN].text.split()) and frozen[BOB].text == ""

    loop.box.hold_at = None
    code, out, err = run_cli(loop.config, "send", "--now", WEEKS[1])
    assert_private(out, err)
    assert code == 0, err
    assert "replies: 0 new answer(s)" in out
    assert loop.box.copies() == {ANN: 2, BOB: 2}
    for reader in (ANN, BOB):
        copy = loop.copies(reader)[-1]
        block = " ".join(frozen[reader].text.split())
        assert block in bodies(copy)[0]
        assert dict(frozen[reader].headers)["Reply-To"] == str(copy["Reply-To"])
    with Store.open(loop.state) as store:
        assert [a.text for a in store.answers(ANN)] == [ANN_ANSWER]
        assert [d.status for d in store.deliveries(week2.id)] == ["sent", "sent"]
