"""No title or name, from a feed or from feeds.yaml, can add, split or drop a header: CR/LF,
Unicode line breaks and RFC 2047 encoded words (which Python decodes as a value is set) alike."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.deliver import build_message, header_text
from curator.models import NewsletterConfig

EXPECTED = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "MIME-Version",
    "Content-Type",
]

B64_BCC = base64.b64encode(b"x\r\nBcc: evil@attacker.example").decode()
HOSTILE = [
    "Plain title",
    "Line one\r\nBcc: evil@attacker.example",
    "Line one\nX-Injected: yes",
    "Only CR\rX-Injected: yes",
    "Unicode\u2028line\u2029separators\x85too",
    "Hi =?utf-8?q?x=0D=0ABcc:_evil@attacker.example?= there",
    f"=?utf-8?b?{B64_BCC}?=",
    "x" * 200 + " =?utf-8?q?=0ABcc:_evil@attacker.example?=",
    '"Quoted" name, with <angle@brackets.example>, and; semicolons',
    "=?iso-8859-1?q?caf=E9?= \u00e9\u00e8 \U0001f600",
]


def parsed(
    subject: str, title: str = "Lead Weekly", from_name: str = "Lead Weekly"
) -> EmailMessage:
    newsletter = NewsletterConfig(
        title=title,
        # As a user would write it in feeds.yaml: quoted as needed, on one line.
        from_addr=formataddr((" ".join(from_name.splitlines()), "digest@example.org")),
        unsubscribe="https://example.org/unsubscribe",
    )
    outgoing = build_message(
        newsletter=newsletter,
        recipient="Ann Reader <ann@example.org>",
        subject=subject,
        html="<p>body</p>",
        text="body",
        period="2026-W48",
        round_=1,
        date=datetime(2026, 11, 26, 8, tzinfo=UTC),
    )
    message = email.message_from_bytes(outgoing.message.as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def assert_headers_intact(message: EmailMessage) -> None:
    assert list(message.keys()) == EXPECTED
    assert [str(a.addr_spec) for a in message["To"].addresses] == ["ann@example.org"]
    assert [str(a.addr_spec) for a in message["From"].addresses] == ["digest@example.org"]
    for name in ("Subject", "List-Id", "From", "To"):
        value = str(message[name])
        assert "\r" not in value
        assert "\n" not in value


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_title_never_changes_the_header_set(text: str) -> None:
    """The same text as subject, list title and sender name leaves exactly the expected
    headers, one recipient and one sender, each value on one line once decoded."""
    assert_headers_intact(parsed(text))
    assert_headers_intact(parsed("Subject", title=text))
    assert_headers_intact(parsed("Subject", from_name=text))


def test_a_plain_subject_reads_as_written() -> None:
    """Ordinary text (accents, emoji, punctuation) comes back exactly as it went in."""
    subject = "Lead Weekly: café, naïve — 30 Nov 😀"
    assert str(parsed(subject)["Subject"]) == subject


def test_an_encoded_word_in_a_title_stays_literal() -> None:
    """Text that looks like an encoded word is shown as text, never decoded into headers."""
    value = str(parsed("Hi =?utf-8?q?x=0D=0ABcc:_e@x.example?= there")["Subject"])
    assert "Bcc" in value
    assert value.replace("\u200b", "") == "Hi =?utf-8?q?x=0D=0ABcc:_e@x.example?= there"


def test_header_text_breaks_encoded_words_and_lines() -> None:
    """header_text joins lines and breaks every `=?`."""
    assert header_text("a\r\nb =?utf-8?q?c?=") == "a b =\u200b?utf-8?q?c?="


FRAGMENTS = st.sampled_from([
    "\r\n",
    "\n",
    "\r",
    "\u2028",
    "Bcc: x@evil.example",
    "=?utf-8?q?",
    "=?utf-8?b?",
    "?=",
    "=0D=0A",
    B64_BCC,
    '"',
    "<",
    ">",
    ",",
    ";",
    ":",
    " ",
    "\t",
    "é",
])  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=25).map("".join))
def test_no_generated_text_changes_the_header_set(text: str) -> None:
    """Any mix of line breaks, encoded-word pieces and address punctuation, as subject, title
    and sender name, leaves the header set as it was."""
    assert_headers_intact(parsed(text, title=text or "t", from_name=text))


MINE = "<mailto:reflect+token@example.org?subject=unsubscribe>"


@pytest.mark.parametrize(
    ("unsubscribe", "own", "expected", "one_click"),
    [
        # no reply address: the newsletter's own, one-click when https
        ("https://x.org/u", (), "<https://x.org/u>", True),
        ("mailto:u@x.org", (), "<mailto:u@x.org>", False),
        # replies configured: the https link stays first (one-click), the reader's mailto after
        ("https://x.org/u", (("List-Unsubscribe", MINE),), f"<https://x.org/u>, {MINE}", True),
        # a newsletter mailto gives way to the reader's own, which names the reader
        ("mailto:u@x.org", (("List-Unsubscribe", MINE),), MINE, False),
        (None, (("List-Unsubscribe", MINE),), MINE, False),
        (None, (), None, False),
    ],
)
def test_list_unsubscribe_keeps_one_click_beside_the_readers_mailto(
    unsubscribe: str | None,
    own: tuple[tuple[str, str], ...],
    expected: str | None,
    one_click: bool,
) -> None:
    """List-Unsubscribe holds the https address first (with List-Unsubscribe-Post) and the
    reader's own mailto after it; a mailto of the newsletter's gives way to the reader's."""
    outgoing = build_message(
        newsletter=NewsletterConfig(from_addr="d@example.org", unsubscribe=unsubscribe),
        recipient="ann@example.org",
        subject="s",
        html="<p>h</p>",
        text="t",
        period="2026-W48",
        round_=1,
        date=datetime(2026, 11, 26, tzinfo=UTC),
        headers=own,
    )
    message = email.message_from_bytes(outgoing.message.as_bytes(), policy=email.policy.default)
    # A long value is folded at the comma; unfolded, it reads as written.
    value = message["List-Unsubscribe"]
    assert (" ".join(value.split()) if value is not None else None) == expected
    assert (message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click") is one_click


def test_list_unsubscribe_is_literal_uris_on_the_wire() -> None:
    """A long List-Unsubscribe (an https address and a reader's token mailto) is written as
    literal <URI>s, never as RFC 2047 encoded words a mail program cannot use."""
    outgoing = build_message(
        newsletter=NewsletterConfig(
            from_addr="d@example.org",
            unsubscribe="https://example.org/a/long/unsubscribe/path/for/this/list?list=lead-weekly",
        ),
        recipient="ann@example.org",
        subject="s",
        html="<p>h</p>",
        text="t",
        period="2026-W48",
        round_=1,
        date=datetime(2026, 11, 26, tzinfo=UTC),
        headers=(("List-Unsubscribe", MINE),),
    )
    head = outgoing.message.as_bytes().split(b"\r\n\r\n", 1)[0].decode()
    (line,) = [h for h in head.split("\r\n") if h.startswith("List-Unsubscribe:")]
    assert "=?" not in line
    assert line.endswith(
        f"<https://example.org/a/long/unsubscribe/path/for/this/list?list=lead-weekly>, {MINE}"
    )
