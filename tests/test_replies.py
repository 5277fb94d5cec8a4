"""The reflection loop without a network: tokens, config, the state, deciding, the Maildir and
Postmark-inbound sources, giving answers back, the journal and the commands."""

from __future__ import annotations

import json
import mailbox
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_config
from curator.answers import PersonalParts, journal_markdown, pick_earlier_answers
from curator.cli import app
from curator.config import load_config
from curator.errors import ConfigError
from curator.models import Answer, PersonalCopy
from curator.render import PERSONAL_MARKER_TEXT, insert_personal, render_personal
from curator.replies import (
    Incoming,
    MaildirSource,
    PostmarkInboundSource,
    active_recipients,
    collect_replies,
    decide,
    reader_headers,
)
from curator.reply_text import ReplyMessage
from curator.store import Store
from curator.tokens import (
    KEY_GRACE,
    TOKEN_LENGTH,
    TokenKey,
    make_token,
    read_token,
    tagged_address,
    tokens_for,
)
from reply_kit import (
    ADDRESS,
    freeze,
    replies_config,
    reply_email,
    reply_to,
    unsubscribe_to,
)

NOW = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
KEY = TokenKey(7, b"k" * 32, NOW - timedelta(days=30))


# ---------------------------------------------------------------- tokens


def test_token_names_issue_and_reader_and_survives_case_folding() -> None:
    """A token reads back to its issue and reader, in upper case too, and fits a local part."""
    token = make_token(KEY, "reply", 123456, 42)
    claim = read_token(token.upper(), [KEY], NOW)
    assert claim is not None and (claim.purpose, claim.issue_id, claim.reader_id) == (
        "reply",
        123456,
        42,
    )
    assert len(token) == TOKEN_LENGTH and token == token.lower() and "=" not in token
    local = tagged_address(ADDRESS, token).split("@")[0]
    assert len(local) <= 64


def _altered(token: str) -> str:
    first = "b" if token[5] == "a" else "a"
    return token[:5] + first + token[6:]


@pytest.mark.parametrize(
    ("token", "keys", "now"),
    [
        ("", [KEY], NOW),
        ("not-a-token", [KEY], NOW),
        (_altered(make_token(KEY, "reply", 1, 2)), [KEY], NOW),
        (make_token(TokenKey(7, b"x" * 32, NOW), "reply", 1, 2), [KEY], NOW),
        (make_token(KEY, "reply", 1, 2), [], NOW),
        (
            make_token(KEY, "reply", 1, 2),
            [replace(KEY, retired_at=NOW - KEY_GRACE - timedelta(days=1))],
            NOW,
        ),
    ],
    ids=["empty", "garbage", "altered", "forged-with-other-key", "no-keys", "stale-key"],
)
def test_forged_altered_or_stale_token_is_not_valid(
    token: str, keys: list[TokenKey], now: datetime
) -> None:
    """A token that was not signed by a live key, or was changed, says nothing."""
    assert read_token(token, keys, now) is None


def test_retired_key_still_verifies_within_grace() -> None:
    """After a rotation last week's replies still match."""
    retired = replace(KEY, retired_at=NOW - timedelta(days=7))
    assert read_token(make_token(KEY, "reply", 1, 2), [retired], NOW) is not None


def test_tokens_for_finds_the_tag_in_any_form_of_the_address() -> None:
    """The +tag is found case-insensitively, in a display form, and only for our address."""
    found = tokens_for(
        ADDRESS,
        ['"Reflect" <Reflect+AbC@Example.ORG>', "other+zzz@example.org", "reflect@example.org"],
    )
    assert found == ["abc"]


# ---------------------------------------------------------------- config


def _config_text(replies: str) -> str:
    return f"feeds:\n  - https://example.org/feed\n{replies}"


def test_replies_config_reads_sources_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """replies: address, a Maildir and an IMAP box (password from the environment)."""
    path = write_config(
        tmp_path,
        _config_text(
            "replies:\n  address: reflect@example.org\n  maildir: box/\n"
            "  postmark_inbound: hooks\n"
            "  imap: {host: imap.example.org, tls: starttls, username: u}\n"
        ),
    )
    config = load_config(path, env={"CURATOR_IMAP_PASSWORD": "pw"})
    r = config.replies
    assert r is not None and r.maildir == tmp_path / "box"
    assert r.postmark_inbound == tmp_path / "hooks"
    assert r.imap is not None and (r.imap.port, r.imap.password, r.imap.delete) == (
        143,
        "pw",
        False,
    )
    assert "pw" not in repr(config)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.3.4.5", "::1"])
def test_imap_without_tls_is_accepted_for_a_loopback_host(tmp_path: Path, host: str) -> None:
    """`tls: none` is allowed only for a server on this machine (127.0.0.0/8, ::1, localhost)."""
    text = f"replies:\n  address: r@example.org\n  imap:\n    host: '{host}'\n    tls: none\n"
    config = load_config(write_config(tmp_path, _config_text(text)))
    assert config.replies is not None and config.replies.imap is not None
    assert (config.replies.imap.tls, config.replies.imap.port) == ("none", 143)


def test_no_replies_section_means_replies_off(tmp_path: Path) -> None:
    """Without `replies:` Config.replies is None."""
    assert load_config(write_config(tmp_path, _config_text(""))).replies is None


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ("replies:\n  maildir: box\n", "feeds.yaml:4: replies: has no address"),
        ("replies:\n  address: nope\n", "replies.address: 'nope' is not an email address"),
        ("replies:\n  address: a+b@example.org\n", "must not hold a '+'"),
        ("replies:\n  address: " + "a" * 30 + "@example.org\n", "longer than 29"),
        ("replies:\n  address: r@example.org\n  imap: {host: h, password: x}\n", "secrets"),
        ("replies:\n  address: r@example.org\n  imap: {host: h, tls: ssl}\n", "replies.imap.tls"),
        ("replies:\n  address: r@example.org\n  maildri: x\n", "did you mean 'maildir'"),
        (
            "replies:\n  address: r@example.org\n  imap:\n    host: imap.example.org\n"
            "    tls: none\n",
            "feeds.yaml:7: replies.imap.tls: `none` would send the password in clear text",
        ),
        (
            "replies:\n  address: r@example.org\n  imap: {host: 10.0.0.5, tls: none}\n",
            "use `tls: implicit`",
        ),
    ],
)
def test_bad_replies_config_names_file_line_and_key(
    tmp_path: Path, replies: str, expected: str
) -> None:
    """Each mistake in replies: is one ConfigError with the file, line and key."""
    path = write_config(tmp_path, _config_text(replies))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in f"{caught.value}\n{caught.value.hint}"
    assert str(path) in str(caught.value)


# ---------------------------------------------------------------- deciding and collecting


def _incoming(to: str, body: str, sender: str = "ann@example.com", mid: str = "<m@x>") -> Incoming:
    return Incoming(ReplyMessage(mid, sender, (to,), body))


def test_reply_from_another_address_with_valid_token_is_the_readers_and_sender_recorded() -> None:
    """The token wins: the answer is the token's reader's; the From address is kept beside."""
    to = tagged_address(ADDRESS, make_token(KEY, "reply", 5, 9))
    decision = decide(_incoming(to, "Yes.", sender="Ann <ann@work.example>"), ADDRESS, [KEY], NOW)
    assert (decision.outcome, decision.reader_id, decision.issue_id) == ("answer", 9, 5)
    assert decision.sender == "ann@work.example" and decision.text == "Yes."


@pytest.mark.parametrize(
    "to",
    [
        ADDRESS,
        tagged_address(ADDRESS, _altered(make_token(KEY, "reply", 5, 9))),
        tagged_address(ADDRESS, make_token(TokenKey(7, b"f" * 32, NOW), "reply", 5, 9)),
        tagged_address("other@example.org", make_token(KEY, "reply", 5, 9)),
    ],
    ids=["no-token", "altered", "forged", "other-address"],
)
def test_message_without_a_valid_token_is_ignored(to: str) -> None:
    """Nobody is credited with a reply whose token is missing, changed or forged."""
    assert decide(_incoming(to, "Yes."), ADDRESS, [KEY], NOW).outcome == "ignored"


@pytest.mark.parametrize("first_line", ["unsubscribe", "STOP", "Stop.", "  Unsubscribe!  "])
def test_first_line_unsubscribe_or_stop_unsubscribes(first_line: str) -> None:
    """A reply starting with unsubscribe or stop, any case or punctuation, unsubscribes."""
    to = tagged_address(ADDRESS, make_token(KEY, "reply", 5, 9))
    decision = decide(_incoming(to, f"{first_line}\n\nthanks"), ADDRESS, [KEY], NOW)
    assert (decision.outcome, decision.reader_id) == ("unsubscribe", 9)


def test_stop_inside_a_sentence_is_an_answer() -> None:
    """Only a first line that is just the word unsubscribes."""
    to = tagged_address(ADDRESS, make_token(KEY, "reply", 5, 9))
    assert decide(_incoming(to, "Stop micromanaging."), ADDRESS, [KEY], NOW).outcome == "answer"


def _maildir(tmp_path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(tmp_path / "box", create=True)
    for raw in messages:
        box.add(raw)
    return tmp_path / "box"


def test_maildir_collection_stores_answers_once_and_counts_the_rest(tmp_path: Path) -> None:
    """Answers are stored; a second collection finds nothing new; tokenless mail is counted."""
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "How are you going to do it?", "ann@example.com")
        to = reply_to(store, issue, "ann@example.com", NOW)
        path = _maildir(
            tmp_path,
            reply_email(to, "I will hand the budget review to Sam.\n\n> quoted"),
            reply_email(ADDRESS, "hello", message_id="<r2@x>"),
        )
        config = replies_config(tmp_path, maildir=path)
        first = collect_replies(config, store, NOW)
        second = collect_replies(config, store, NOW)
        answers = store.answers("ann@example.com")
    assert (first.answers, first.ignored, first.problems) == (1, 1, ())
    assert (second.answers, second.ignored, second.already_seen) == (0, 0, 2)
    assert [a.text for a in answers] == ["I will hand the budget review to Sam."]
    assert answers[0].question == "How are you going to do it?"


def test_unreachable_mailbox_is_a_problem_in_the_report(tmp_path: Path) -> None:
    """A missing Maildir is reported by its path; other sources are still read."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    with Store.open(tmp_path / "state.db") as store:
        config = replies_config(tmp_path, maildir=tmp_path / "gone", postmark_inbound=hooks)
        from curator.replies import build_sources

        report = collect_replies(config, store, NOW, sources=build_sources(config.replies))  # type: ignore[arg-type] # replies is set above
    assert len(report.problems) == 1 and "gone" in report.problems[0].message
    assert any("not a Maildir" in line for line in report.lines())


def _postmark_file(folder: Path, name: str, mailbox_hash: str, **fields: object) -> None:
    payload: dict[str, object] = {
        "MessageID": f"pm-{name}",
        "MailboxHash": mailbox_hash,
        "FromFull": {"Email": "ann@example.com", "Name": "Ann"},
        "TextBody": "full text\n\nOn Mon, 3 Mar 2026 at 09:00, X <x@y.z> wrote:\n> q",
        "StrippedTextReply": "Handing the review to Sam.",
        "OriginalRecipient": f"reflect+{mailbox_hash}@example.org",
    }
    payload.update(fields)
    (folder / f"{name}.json").write_text(json.dumps(payload), encoding="utf-8")


def test_postmark_inbound_files_use_mailbox_hash_and_stripped_reply(tmp_path: Path) -> None:
    """MailboxHash carries the token, StrippedTextReply the words, FromFull.Email the sender."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        token = reply_to(store, issue, "ann@example.com", NOW).split("+")[1].split("@")[0]
        _postmark_file(hooks, "one", token)
        _postmark_file(hooks, "forged", "a" * TOKEN_LENGTH, OriginalRecipient="")
        (hooks / "broken.json").write_text("{not json", encoding="utf-8")
        source = PostmarkInboundSource(hooks, ADDRESS)
        report = collect_replies(replies_config(tmp_path), store, NOW, sources=[source])
        answers = store.answers()
    assert (report.answers, report.ignored) == (1, 1)
    assert [(a.text, a.sender) for a in answers] == [
        ("Handing the review to Sam.", "ann@example.com")
    ]


AUTO = Path(__file__).parent / "data" / "replies" / "auto"
AUTO_CASES = sorted(p.stem for p in AUTO.glob("*.eml"))


@pytest.mark.parametrize("name", AUTO_CASES)
def test_auto_reply_or_bounce_with_a_valid_token_is_ignored_never_stored(
    tmp_path: Path, name: str
) -> None:
    """Out-of-office, vacation, auto-responder, Precedence and delivery-report messages sent
    to a reader's Reply-To are counted as auto-replies, never stored as that reader's answer."""
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        to = reply_to(store, issue, "ann@example.com", NOW)
        raw = (AUTO / f"{name}.eml").read_text(encoding="utf-8").replace("{{TO}}", to)
        config = replies_config(tmp_path, maildir=_maildir(tmp_path, raw.encode()))
        report = collect_replies(config, store, NOW)
        again = collect_replies(config, store, NOW)
        answers = store.answers()
    assert (report.auto_replies, report.answers, report.ignored, report.problems) == (1, 0, 0, ())
    assert any("1 auto-reply" in line for line in report.lines())
    assert again.already_seen == 1 and answers == []


def test_the_auto_reply_table_covers_every_kind() -> None:
    """Each header that marks a machine's reply has a message in the table."""
    headers = "\n".join((AUTO / f"{n}.eml").read_text(encoding="utf-8") for n in AUTO_CASES)
    for mark in [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply:",
        "X-Autorespond:",
        "Precedence: auto_reply",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: list",
        "Content-Type: multipart/report",
    ]:
        assert mark in headers


@pytest.mark.parametrize(
    ("headers", "auto"),
    [
        ((("Auto-Submitted", "no"),), False),
        ((("Auto-Submitted", "No ; comment"),), False),
        ((("Auto-Submitted", "auto-notified"),), True),
        ((("Precedence", "first-class"),), False),
        ((("Precedence", "BULK"),), True),
        ((("Content-Type", "multipart/alternative"),), False),
        ((), False),
    ],
)
def test_a_person_replying_is_not_an_auto_reply(
    headers: tuple[tuple[str, str], ...], auto: bool
) -> None:
    """Auto-Submitted: no, other Precedence values and ordinary types are a person's reply."""
    to = tagged_address(ADDRESS, make_token(KEY, "reply", 5, 9))
    message = ReplyMessage("<m@x>", "ann@example.com", (to,), "Yes.", headers=headers)
    outcome = decide(Incoming(message), ADDRESS, [KEY], NOW).outcome
    assert outcome == ("auto" if auto else "answer")


def test_postmark_auto_reply_is_ignored(tmp_path: Path) -> None:
    """A Postmark payload whose Headers say Auto-Submitted is not stored as an answer."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        token = reply_to(store, issue, "ann@example.com", NOW).split("+")[1].split("@")[0]
        auto = [{"Name": "Auto-Submitted", "Value": "auto-replied"}]
        _postmark_file(hooks, "ooo", token, Headers=auto)
        source = PostmarkInboundSource(hooks, ADDRESS)
        report = collect_replies(replies_config(tmp_path), store, NOW, sources=[source])
        answers = store.answers()
    assert (report.auto_replies, report.answers, answers) == (1, 0, [])


def test_unsubscribe_by_reply_and_by_address_leave_the_reader_out(tmp_path: Path) -> None:
    """Both ways of unsubscribing drop the reader from the next run's recipients."""
    with Store.open(tmp_path / "state.db") as store:
        readers = ("ann@example.com", "Bob <bob@example.com>", "cat@example.com")
        issue = freeze(store, "2026-W10", NOW, "Q?", *readers)
        path = _maildir(
            tmp_path,
            reply_email(reply_to(store, issue, readers[0], NOW), "Unsubscribe"),
            reply_email(unsubscribe_to(store, readers[1], NOW), "", message_id="<u2@x>"),
        )
        report = collect_replies(replies_config(tmp_path, maildir=path), store, NOW)
        remaining = active_recipients(readers, store)
        assert store.answers() == []
        assert store.resubscribe("ANN@example.com")
        after = active_recipients(readers, store)
    assert report.unsubscribes == 2
    assert remaining == ("cat@example.com",)
    assert after == ("ann@example.com", "cat@example.com")


def test_killed_collection_rereads_without_storing_twice(tmp_path: Path) -> None:
    """A message stored before a crash is not stored again when the mailbox is re-read."""
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        raw = reply_email(reply_to(store, issue, "ann@example.com", NOW), "Yes.")
        path = _maildir(tmp_path, raw)
        source = MaildirSource(path)
        batch = source.read(None)
        # As if the run died right after storing the first message.
        decision = decide(batch.messages[0], ADDRESS, store.token_keys(), NOW)
        store.record_reply_message(
            batch.messages[0].message.message_id, decision.outcome, NOW,
            reader_id=decision.reader_id, issue_id=decision.issue_id, text=decision.text,
        )  # fmt: skip
        report = collect_replies(replies_config(tmp_path, maildir=path), store, NOW)
        assert len(store.answers()) == 1
    assert (report.answers, report.already_seen) == (0, 1)


def test_rotated_key_keeps_last_weeks_token_valid(tmp_path: Path) -> None:
    """A reply to last week's copy still counts after `replies rotate-key`."""
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        to = reply_to(store, issue, "ann@example.com", NOW)
        old = store.signing_key(NOW)
        new = store.rotate_token_key(NOW + timedelta(days=1))
        path = _maildir(tmp_path, reply_email(to, "Still mine."))
        report = collect_replies(
            replies_config(tmp_path, maildir=path), store, NOW + timedelta(days=7)
        )
    assert new.id != old.id and report.answers == 1


# ---------------------------------------------------------------- giving answers back


def _answer(
    issue_id: int, days_ago: int, text: str, question: str | None = "Q?", period: str = ""
) -> Answer:
    built = NOW - timedelta(days=days_ago)
    return Answer(
        reader="ann@example.com",
        issue_id=issue_id,
        period=period or f"p{issue_id}",
        issue_date=built,
        question=question,
        received_at=built + timedelta(hours=3),
        text=text,
    )


@pytest.mark.parametrize(
    ("answers", "previous_id", "expected"),
    [
        ([], 9, (None, None, "")),
        ([_answer(9, 7, "last")], 9, ("last", None, "")),
        ([_answer(9, 7, "last"), _answer(5, 28, "month")], 9, ("last", "month", "A month ago")),
        ([_answer(3, 85, "quarter")], 9, (None, "quarter", "Three months ago")),
        ([_answer(1, 365, "year"), _answer(5, 30, "month")], 9, (None, "year", "A year ago")),
        ([_answer(4, 40, "between")], 9, (None, None, "")),
        ([_answer(9, 28, "prev-is-a-month")], 9, ("prev-is-a-month", None, "")),
        ([_answer(8, 14, "older")], 9, (None, None, "")),
        # an answer to the first round of a period later resent (--force) still counts
        ([_answer(10, 7, "round one", period="p9")], 9, ("round one", None, "")),
        # two replies to one issue (an answer, then an afterthought) both come back, in order
        (
            [_answer(9, 7, "afterthought"), _answer(9, 8, "main answer")],
            9,
            ("main answer\n\nafterthought", None, ""),
        ),
    ],
    ids=[
        "nothing",
        "previous",
        "previous-and-month",
        "quarter",
        "year-first",
        "outside-windows",
        "previous-not-twice",
        "other-issue",
        "earlier-round",
        "two-replies",
    ],
)
def test_pick_earlier_answers(
    answers: list[Answer], previous_id: int, expected: tuple[str | None, str | None, str]
) -> None:
    """The previous issue's answer, and one from about 52, 12 or 4 weeks ago (±4 days)."""
    parts = pick_earlier_answers(answers, NOW, f"p{previous_id}")
    got = (
        parts.previous.text if parts.previous else None,
        parts.earlier.text if parts.earlier else None,
        parts.earlier_label,
    )
    assert got == expected


def test_personal_block_quotes_the_answer_escaped() -> None:
    """The block says what the reader answered, and a reply is text, never markup."""
    parts = PersonalParts(
        previous=_answer(9, 7, "I will hand the budget <b>review</b> to Sam.", "How?"),
        earlier=_answer(1, 364, "Lead more.", "Leading or managing?"),
        earlier_label="A year ago",
    )
    html, text = render_personal(parts)
    assert "Last week you answered <em>How?</em>" in html
    assert "&lt;b&gt;review&lt;/b&gt;" in html and "<b>" not in html
    assert "A year ago you wrote" in html
    assert "Last week you answered *How?*: 'I will hand the budget <b>review</b> to Sam.'" in (
        " ".join(text.split())
    )
    assert render_personal(PersonalParts()) == ("", "")


def test_insert_personal_fills_or_removes_the_marker() -> None:
    """The shared body gets the reader's block in place of the marker, or loses the marker."""
    shared = f"QUESTION\n{PERSONAL_MARKER_TEXT}\nPOSTS"
    assert insert_personal(shared, "  mine", "text") == "QUESTION\n\n  mine\nPOSTS"
    assert insert_personal(shared, "", "text") == "QUESTION\nPOSTS"


def test_reader_headers_carry_reply_and_unsubscribe_tokens() -> None:
    """Reply-To names issue and reader; List-Unsubscribe is a mailto with its own token."""
    from curator.models import ReplyConfig

    headers = reader_headers(ReplyConfig(ADDRESS), KEY, 5, 9)
    reply = tokens_for(ADDRESS, [headers["Reply-To"]])
    mailto = headers["List-Unsubscribe"].strip("<>").split(":", 1)[1].split("?")[0]
    unsub = tokens_for(ADDRESS, [mailto])
    reply_claim = read_token(reply[0], [KEY], NOW)
    unsub_claim = read_token(unsub[0], [KEY], NOW)
    assert reply_claim is not None and (reply_claim.purpose, reply_claim.issue_id) == ("reply", 5)
    assert unsub_claim is not None and (unsub_claim.purpose, unsub_claim.reader_id) == (
        "unsubscribe",
        9,
    )
    assert "ann" not in str(headers)


def test_journal_markdown_keeps_question_and_escapes_the_answer() -> None:
    """The Markdown journal has a section per answer, with the reader's text inert."""
    md = journal_markdown([_answer(1, 7, "Sam gets it. <script>x</script>", "How?")])
    assert "*How?*" in md and "\\<script\\>" in md


# ---------------------------------------------------------------- commands


def test_commands_collect_list_readers_and_print_the_journal(tmp_path: Path) -> None:
    """`replies`, `readers`, `journal --format json` and `readers --resubscribe` work end to end."""
    box = tmp_path / "box"
    path = write_config(
        tmp_path,
        "newsletter:\n  to: [ann@example.com, bob@example.com]\n"
        "replies:\n  address: reflect@example.org\n  maildir: box\n"
        "feeds:\n  - https://example.org/feed\n",
    )
    state = tmp_path / ".curator" / "state.db"
    with Store.open(state) as store:
        issue = freeze(store, "2026-W10", NOW, "How?", "ann@example.com", "bob@example.com")
        _maildir(
            tmp_path,
            reply_email(reply_to(store, issue, "ann@example.com", NOW), "Hand it to Sam."),
            reply_email(reply_to(store, issue, "bob@example.com", NOW), "stop", message_id="<b@x>"),
        )
    runner = CliRunner()
    collected = runner.invoke(app, ["--config", str(path), "replies"])
    assert collected.exit_code == 0, collected.output
    assert "1 new answer(s), 1 unsubscribe(s), 0 ignored" in collected.output
    listed = runner.invoke(app, ["--config", str(path), "readers"])
    assert "#\taddress\tin to\tdelivered" in listed.output
    assert any(
        "\tbob@example.com\tyes" in line and not line.endswith("\tno")
        for line in listed.output.splitlines()
    )
    journal = runner.invoke(app, ["--config", str(path), "journal", "--format", "json"])
    assert json.loads(journal.output)[0]["text"] == "Hand it to Sam."
    again = runner.invoke(
        app, ["--config", str(path), "readers", "--resubscribe", "bob@example.com"]
    )
    assert again.exit_code == 0 and "resubscribed" in again.output
    assert box.is_dir()


def test_reader_summaries_count_a_named_recipient_as_its_address(tmp_path: Path) -> None:
    """Deliveries to "Bob <bob@...>" and Bob's replies make one row with his counts."""
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "Bob <Bob@example.com>", "ann@example.com")
        store.mark_delivery(issue, "Bob <Bob@example.com>", "sent", "250 ok", NOW)
        store.mark_delivery(issue, "ann@example.com", "failed", "550 no", NOW)
        path = _maildir(
            tmp_path, reply_email(reply_to(store, issue, "Bob <Bob@example.com>", NOW), "Yes.")
        )
        collect_replies(replies_config(tmp_path, maildir=path), store, NOW)
        rows = {r.address: r for r in store.reader_summaries()}
    assert set(rows) == {"ann@example.com", "bob@example.com"}
    bob, ann = rows["bob@example.com"], rows["ann@example.com"]
    assert (bob.delivered, bob.failed, bob.last_reply is not None) == (1, 0, True)
    assert (ann.delivered, ann.failed, ann.last_reply) == (0, 1, None)


def test_a_state_file_from_before_replies_gains_the_tables(tmp_path: Path) -> None:
    """A version-2 state opens, gains readers, replies and the delivery columns, keeps rows."""
    import sqlite3

    from curator.store import MIGRATIONS, SCHEMA

    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)
    old.executescript(MIGRATIONS[0])
    old.execute("INSERT INTO feeds (url, name) VALUES ('https://a/', 'A')")
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()
    with Store.open(path) as store:
        issue = freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        store.save_personal_copies(issue, {"ann@example.com": PersonalCopy("<p>x</p>", "x")})
        assert store.personal_copies(issue)["ann@example.com"].html == "<p>x</p>"
        assert store.feed_health()["https://a/"].name == "A"
        assert store.reader_ids(["ann@example.com"], NOW) == {"ann@example.com": 1}


def test_replies_command_reports_an_unreadable_mailbox_and_rotates_the_key(tmp_path: Path) -> None:
    """A missing Maildir is one stderr line and exit 1; rotate-key makes a new signing key."""
    path = write_config(
        tmp_path,
        "replies:\n  address: reflect@example.org\n  maildir: nowhere\n"
        "feeds:\n  - https://example.org/feed\n",
    )
    runner = CliRunner()
    collected = runner.invoke(app, ["--config", str(path), "replies"])
    assert collected.exit_code == 1
    assert "nowhere: not a Maildir" in collected.stderr
    rotated = runner.invoke(app, ["--config", str(path), "replies", "rotate-key"])
    assert rotated.exit_code == 0 and "new reply-token key" in rotated.output
    with Store.open(tmp_path / ".curator" / "state.db") as store:
        assert len(store.token_keys()) == 1
    markdown = runner.invoke(app, ["--config", str(path), "journal", "--format", "md"])
    assert markdown.exit_code == 0 and markdown.output.startswith("# ")
    wrong = runner.invoke(app, ["--config", str(path), "journal", "--format", "html"])
    assert wrong.exit_code == 2


def test_a_readers_block_always_fits_its_reserved_room() -> None:
    """Two answers of the longest kept size, all markup characters (five times longer once
    escaped), still render within PERSONAL_RESERVE; so a copy stays under Gmail's clipping."""
    from curator.answers import PersonalParts
    from curator.models import Answer
    from curator.render import PERSONAL_RESERVE
    from curator.reply_text import MAX_ANSWER_CHARS

    when = datetime(2026, 3, 2, tzinfo=UTC)
    worst = ("& " * MAX_ANSWER_CHARS)[:MAX_ANSWER_CHARS]
    answer = Answer("ann@x.org", 1, "2026-W09", when, "Q?", when, worst)
    parts = PersonalParts(previous=answer, earlier=answer, earlier_label="A year ago")
    html, text = render_personal(parts)
    assert len(html.encode()) <= PERSONAL_RESERVE
    assert "&amp;" in html and html.rstrip().endswith("</p>")
    assert text


@pytest.mark.parametrize(
    ("words", "asks"),
    [
        ("I will hand the budget review to Sam.", True),
        ("i'll talk to the team on Monday", True),
        ("I’m going to stop checking mail at night.", True),
        ("They would say we are busy but not clear.", False),
        ("Managing, mostly.", False),
    ],
)
def test_did_you_follows_only_an_answer_that_promised(words: str, asks: bool) -> None:
    """The block asks "Did you?" after an answer that promised something, not after any."""
    from curator.answers import PersonalParts
    from curator.models import Answer

    when = datetime(2026, 3, 2, tzinfo=UTC)
    answer = Answer("ann@x.org", 1, "2026-W09", when, "Q?", when, words)
    html, text = render_personal(PersonalParts(previous=answer))
    assert ("Did you?" in html, "Did you?" in " ".join(text.split())) == (asks, asks)


def test_an_automatic_message_to_the_unsubscribe_address_still_unsubscribes(
    tmp_path: Path,
) -> None:
    """A mail program's unsubscribe button may mark its message as automatic: sent to the
    reader's unsubscribe address, it unsubscribes all the same."""
    with Store.open(tmp_path / "state.db") as store:
        freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
        to = unsubscribe_to(store, "ann@example.com", NOW)
        raw = (AUTO / "precedence_list.eml").read_text(encoding="utf-8")
        raw = raw.replace("{{TO}}", to)
        config = replies_config(tmp_path, maildir=_maildir(tmp_path, raw.encode()))
        report = collect_replies(config, store, NOW)
        gone = store.unsubscribed()
    assert (report.unsubscribes, report.auto_replies) == (1, 0)
    assert gone == {"ann@example.com"}


def test_stop_on_the_first_line_unsubscribes_and_keeps_what_follows(tmp_path: Path) -> None:
    """A reply opening with "Stop." unsubscribes the reader, as asked; the lines written
    under it are kept as their answer, never lost."""
    with Store.open(tmp_path / "state.db") as store:
        issue = freeze(store, "2026-W10", NOW, "What could you stop doing?", "ann@example.com")
        body = "Stop.\nChecking every report before it goes out. That's my answer."
        path = _maildir(tmp_path, reply_email(reply_to(store, issue, "ann@example.com", NOW), body))
        report = collect_replies(replies_config(tmp_path, maildir=path), store, NOW)
        answers = store.answers()
        gone = store.unsubscribed()
    assert report.unsubscribes == 1 and gone == {"ann@example.com"}
    assert [a.text for a in answers] == [
        "Checking every report before it goes out. That's my answer."
    ]


def test_a_journal_of_several_readers_keeps_each_under_their_own_heading() -> None:
    """`journal --format md` without --reader groups answers by reader (a reader's file is
    never a mix of voices); with one reader it is that reader's journal alone."""
    from curator.models import Answer

    when = datetime(2026, 3, 2, tzinfo=UTC)
    ann = Answer("ann@x.org", 1, "2026-W09", when, "Q?", when, "Ann's words")
    bob = Answer("bob@x.org", 1, "2026-W09", when, "Q?", when, "Bob's words")
    both = journal_markdown([ann, bob], "Lead Weekly: answers")
    ann_head, bob_head = both.index("## ann@x\\.org"), both.index("## bob@x\\.org")
    assert ann_head < both.index("Ann's words") < bob_head < both.index("Bob's words")
    alone = journal_markdown([ann], "Lead Weekly: my answers")
    assert "ann@x.org" not in alone and "Ann's words" in alone


def test_resubscribing_an_address_curator_does_not_know_is_an_error(tmp_path: Path) -> None:
    """`readers --resubscribe` with a typo exits 2 naming it, instead of a quiet "was not
    unsubscribed" that leaves the real reader out."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "newsletter: {to: [ann@example.com]}\nfeeds: [https://example.org/feed]\n"
        "replies: {address: reflect@example.org, maildir: box}\n"
    )
    with Store.open(tmp_path / ".curator" / "state.db") as store:
        freeze(store, "2026-W10", NOW, "Q?", "ann@example.com")
    result = CliRunner().invoke(
        app, ["--config", str(path), "readers", "--resubscribe", "anne@example.com"]
    )
    assert result.exit_code == 2
    assert "'anne@example.com' is not a reader curator knows" in result.stderr


def test_only_the_spelling_curator_wrote_is_a_token() -> None:
    """A token whose last character is changed only in bits past its bytes is refused: an
    altered token is never accepted, however it was altered."""
    token = make_token(KEY, "reply", 12, 3)
    assert read_token(token, [KEY], NOW) is not None
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    others = [token[:-1] + c for c in alphabet if c != token[-1]]
    assert [t for t in others if read_token(t, [KEY], NOW) is not None] == []
