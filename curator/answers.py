"""Readers' answers given back and kept: pure choices and formats, no I/O.

:func:`pick_earlier_answers` chooses, for one reader and a new issue, the answer to the previous
issue's question and one from about 4, 12 or 52 weeks before (a year first: it says the most).
:func:`journal_markdown` and :func:`journal_json` format the journal as documents to keep.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from curator.models import Answer

# How far an "about N weeks ago" answer may sit from exactly N weeks.
WINDOW = timedelta(days=4)
LOOK_BACK: tuple[tuple[int, str], ...] = (
    (52, "A year ago"),
    (12, "Three months ago"),
    (4, "A month ago"),
)


@dataclass(frozen=True)
class PersonalParts:
    """What one reader's copy gives back. Empty when the reader never answered."""

    previous: Answer | None = None
    earlier: Answer | None = None
    earlier_label: str = ""

    @property
    def empty(self) -> bool:
        return self.previous is None and self.earlier is None


def _received(answer: Answer) -> datetime:
    return answer.received_at


def pick_earlier_answers(
    answers: Sequence[Answer], issue_date: datetime, previous_period: str | None
) -> PersonalParts:
    """The reader's answers to the previous period's issue (any of its rounds: a forced
    resend's copy and the first one ask the same question), and their latest answer to an
    issue built about 52, 12 or 4 weeks before ``issue_date`` (within :data:`WINDOW`)."""
    previous = None
    if previous_period is not None:
        to_previous = sorted((a for a in answers if a.period == previous_period), key=_received)
        if to_previous:
            # A reader who wrote twice (an answer, then an afterthought) gets both back, in
            # the order written.
            previous = replace(to_previous[0], text="\n\n".join(a.text for a in to_previous))
    for weeks, label in LOOK_BACK:
        target = issue_date - timedelta(weeks=weeks)
        near = [
            a
            for a in answers
            if abs(a.issue_date - target) <= WINDOW and a.period != previous_period
        ]
        if near:
            chosen = max(near, key=lambda a: (-abs(a.issue_date - target), a.received_at))
            same = sorted((a for a in near if a.period == chosen.period), key=_received)
            earlier = replace(same[0], text="\n\n".join(a.text for a in same))
            return PersonalParts(previous, earlier, label)
    return PersonalParts(previous)


def _md_escape(text: str) -> str:
    # The answer is the reader's text, shown as text: Markdown and HTML in it stay inert.
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~&" else ch)
    return "".join(out)


def journal_markdown(answers: Sequence[Answer], title: str = "My reflection journal") -> str:
    """The journal as Markdown a reader could keep: one section per answer. Answers of more
    than one reader are grouped under each reader's address, never mixed into one voice."""
    readers = list(dict.fromkeys(a.reader for a in answers))
    if len(readers) > 1:
        parts = [f"# {_md_escape(title)}", ""]
        for reader in readers:
            own = [a for a in answers if a.reader == reader]
            section = journal_markdown(own, reader).split("\n")
            parts += ["#" + line if line.startswith("#") else line for line in section]
        return "\n".join(parts)
    lines = [f"# {_md_escape(title)}", ""]
    for a in answers:
        lines.append(f"## {a.issue_date:%d %B %Y} ({_md_escape(a.period)})")
        lines.append("")
        if a.question:
            lines.append(f"*{_md_escape(a.question)}*")
            lines.append("")
        lines.extend(f"> {_md_escape(line)}" if line else ">" for line in a.text.split("\n"))
        lines.append("")
        lines.append(f"Answered {a.received_at:%Y-%m-%d}.")
        lines.append("")
    return "\n".join(lines)


def journal_json(answers: Sequence[Answer]) -> str:
    """The journal as a JSON list, one object per answer."""
    return json.dumps(
        [
            {
                "reader": a.reader,
                "period": a.period,
                "issue_date": a.issue_date.isoformat(),
                "question": a.question,
                "answered_at": a.received_at.isoformat(),
                "text": a.text,
                "sender": a.sender,
            }
            for a in answers
        ],
        indent=2,
        ensure_ascii=False,
    )
