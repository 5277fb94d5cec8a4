"""The reader's own words: real-shaped replies under tests/data/replies/, each beside the exact
text that must be kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from curator.reply_text import (
    MAX_ANSWER_CHARS,
    MAX_MESSAGE_BYTES,
    html_to_text,
    is_unsubscribe,
    own_words,
    read_message,
)

REPLIES = Path(__file__).parent / "data" / "replies"
CASES = sorted(p.stem for p in REPLIES.glob("*.eml"))


def test_the_table_holds_every_client() -> None:
    """The table covers the clients and languages readers use."""
    assert {
        "gmail_top_posted",
        "outlook_original_message",
        "apple_mail_iphone",
        "thunderbird_signature",
        "android_phone_footer",
        "inline_reply",
        "german_am_schrieb",
        "french_le_a_ecrit",
        "spanish_el_escribio",
        "html_only_gmail",
    } <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_reply_keeps_only_the_readers_words(name: str) -> None:
    """Quoted original, wrote-lines, signatures and phone footers are gone; the words stay."""
    message = read_message((REPLIES / f"{name}.eml").read_bytes())
    expected = (REPLIES / f"{name}.expected.txt").read_text(encoding="utf-8").rstrip("\n")
    assert own_words(message.body) == expected


def test_reader_sentence_starting_with_on_is_kept() -> None:
    """A reader's own "On reflection, ..." line is not taken for a wrote-line."""
    body = (
        "On reflection, I manage too much.\n\nOn Mon, 3 Mar 2026 at 09:00, X <\nx@y.z> wrote:\n> q"
    )
    assert own_words(body) == "On reflection, I manage too much."


def test_long_answer_is_cut_to_the_bound() -> None:
    """An answer keeps at most MAX_ANSWER_CHARS characters and says it was cut."""
    words = own_words("word " * 5000)
    assert len(words) <= MAX_ANSWER_CHARS + 2 and words.endswith("…")


def test_oversized_message_is_not_read() -> None:
    """A message over MAX_MESSAGE_BYTES is marked too large and its body ignored."""
    message = read_message(b"Subject: x\r\n\r\n" + b"a" * (MAX_MESSAGE_BYTES + 1))
    assert message.too_large and message.body == ""


def test_html_to_text_drops_scripts_and_quotes() -> None:
    """Script, style and quoted blocks never reach the text."""
    html = (
        "<style>p{}</style><p>Mine &amp; yours</p><script>x()</script><blockquote>old</blockquote>"
    )
    assert html_to_text(html) == "Mine & yours"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("unsubscribe", True),
        ("\n\nStop!\nthanks", True),
        ("UNSUBSCRIBE.", True),
        ("stop doing that", False),
        ("I will stop", False),
        ("", False),
    ],
)
def test_is_unsubscribe_reads_only_the_first_line(words: str, expected: bool) -> None:
    """Only a first line that is just unsubscribe or stop counts."""
    assert is_unsubscribe(words) is expected


@pytest.mark.parametrize(
    "raw",
    [
        b'From: "\\\nTo: a@[\nSubject: x\n\nhello\n',
        b'From: <<>>@@\nTo: ,,,@\nCc: "unterminated\nSubject: x\n\nhello\n',
        b"\xff\xfe\x00garbage\n\n\x00",
    ],
    ids=["bracket", "at-signs", "binary"],
)
def test_a_message_that_cannot_be_taken_apart_is_read_as_nothing(raw: bytes) -> None:
    """A broken message (anyone can mail the reply address) never raises: it reads as a
    message with no recipient and no words, so collection counts it as ignored."""
    message = read_message(raw)
    assert message.recipients == () or all(isinstance(r, str) for r in message.recipients)
    assert message.message_id
