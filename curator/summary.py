"""The operator's run summary, in Markdown: what GitHub Actions shows on a run's page when
``GITHUB_STEP_SUMMARY`` names a file (the CLI appends to it). Pure: text in, text out.

It says what the operator needs and nothing a reader would not want public (a public
repository's run pages are public): the issue's period and post count, how many recipients
were delivered, failed or pending (counts, never addresses), and every feed that failed or
rests, with its reason. Readers are not the alarm system; this is.
"""

from __future__ import annotations

from collections.abc import Sequence

from curator.models import FeedOutcome
from curator.sending import IssueTally, SendReport


def _cell(text: str) -> str:
    """Text safe in one Markdown table cell: one line, no column breaks, no markup."""
    flat = " ".join(text.split())
    for char in "\\|`*_[]<>":
        flat = flat.replace(char, f"\\{char}")
    return flat


def _feeds(outcomes: Sequence[FeedOutcome]) -> list[str]:
    rows = []
    for o in outcomes:
        if not o.ok:
            rows.append(f"| {_cell(o.feed.name)} | failed | {_cell(o.error or '')} |")
        elif o.resting:
            rows.append(f"| {_cell(o.feed.name)} | resting | {_cell(o.fetch.error or '')} |")
    if not rows:
        return []
    return [
        "",
        "### Feeds that gave nothing",
        "",
        "| feed | status | reason |",
        "|---|---|---|",
        *rows,
    ]


def _issue_row(t: IssueTally) -> str:
    what = "already sent" if t.already_sent else "delivered"
    return f"| {t.period} | {t.round} | {t.posts} | {what} | {t.sent} | {t.failed} | {t.pending} |"


def send_summary(report: SendReport) -> str:
    """The summary of one ``curator send``."""
    verdict = "done" if report.exit_code == 0 else f"failed (exit {report.exit_code})"
    period = f" {report.period}" if report.period else ""
    lines = [f"## curator send{period}: {verdict}"]
    if report.issues:
        lines += [
            "",
            "| period | round | posts | this run | delivered | failed | pending |",
            "|---|---|---|---|---|---|---|",
            *(_issue_row(t) for t in report.issues),
        ]
    else:
        why = [n.text for n in report.notes if n.level in ("info", "warning")]
        last = why[-1] if why else "nothing was sent"
        lines += ["", f"Nothing was delivered: {_cell(last)}"]
    if any(t.pending for t in report.issues):
        lines += ["", "Pending recipients get the issue on the next run."]
    return "\n".join([*lines, *_feeds(report.outcomes)]) + "\n"


def fetch_summary(outcomes: Sequence[FeedOutcome], exit_code: int) -> str:
    """The summary of one ``curator fetch``."""
    gave = sum(1 for o in outcomes if not o.ok or o.resting)
    new = sum(o.new_entries for o in outcomes)
    verdict = "done" if exit_code == 0 else f"failed (exit {exit_code})"
    lines = [
        f"## curator fetch: {verdict}",
        "",
        f"{len(outcomes)} feeds: {len(outcomes) - gave} ok, {gave} failed or resting; {new} new",
    ]
    return "\n".join([*lines, *_feeds(outcomes)]) + "\n"


def failure_summary(command: str, message: str) -> str:
    """The summary of a run that stopped with an error."""
    return f"## curator {command}: failed\n\n{_cell(message)}\n"
