"""The operator's run summary for GitHub Actions: the issue, counts of recipients, every feed
that failed or rests; never a reader's address."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FeedServer, Item, Route, rss, run_cli, utc, write_config
from curator.models import FeedConfig, FeedOutcome, FetchResult
from curator.plan import Note
from curator.sending import IssueTally, SendReport
from curator.summary import failure_summary, fetch_summary, send_summary

RON = FeedConfig("Ron | Leads", "https://ron.example/feed")
CAREY = FeedConfig("Carey", "https://carey.example/feed")
FAILED = FeedOutcome(RON, FetchResult(RON, "failed", error="HTTP 503"), error="HTTP 503")
RESTING = FeedOutcome(
    CAREY, FetchResult(CAREY, "skipped", error="failed once, next try after 2026-11-25 13:00 UTC")
)


def test_a_send_summary_is_a_table_of_counts_and_of_feeds_that_gave_nothing() -> None:
    """Period, round, posts and recipient counts per issue; each quiet feed with its reason,
    table characters in names escaped."""
    report = SendReport(
        (Note("info", "sent 2026-W48 (3 posts) to 2 of 3 recipients: S"),),
        exit_code=1,
        period="2026-W48",
        outcomes=(FAILED, RESTING),
        issues=(IssueTally("2026-W47", 1, 4, 3, 0, 0, already_sent=True),
                IssueTally("2026-W48", 1, 3, 2, 0, 1)),
    )  # fmt: skip
    assert send_summary(report) == (
        "## curator send 2026-W48: failed (exit 1)\n"
        "\n"
        "| period | round | posts | this run | delivered | failed | pending |\n"
        "|---|---|---|---|---|---|---|\n"
        "| 2026-W47 | 1 | 4 | already sent | 3 | 0 | 0 |\n"
        "| 2026-W48 | 1 | 3 | delivered | 2 | 0 | 1 |\n"
        "\n"
        "Pending recipients get the issue on the next run.\n"
        "\n"
        "### Feeds that gave nothing\n"
        "\n"
        "| feed | status | reason |\n"
        "|---|---|---|\n"
        "| Ron \\| Leads | failed | HTTP 503 |\n"
        "| Carey | resting | failed once, next try after 2026-11-25 13:00 UTC |\n"
    )


def test_a_send_that_delivered_nothing_says_why() -> None:
    """No issue delivered: the summary gives the run's last word on why."""
    note = Note("warning", "every feed failed and nothing is new: nothing was sent")
    report = SendReport((note,), 1, "2026-W48", outcomes=(FAILED,))
    text = send_summary(report)
    assert "Nothing was delivered: every feed failed and nothing is new" in text
    assert "| Ron \\| Leads | failed | HTTP 503 |" in text


@pytest.mark.parametrize(
    ("outcomes", "code", "line"),
    [
        ((FAILED, RESTING), 1, "2 feeds: 0 ok, 2 failed or resting; 0 new"),
        ((), 0, "0 feeds: 0 ok, 0 failed or resting; 0 new"),
    ],
)
def test_a_fetch_summary_counts_resting_feeds_as_giving_nothing(
    outcomes: tuple[FeedOutcome, ...], code: int, line: str
) -> None:
    """The fetch summary's count line matches the command's own."""
    assert line in fetch_summary(outcomes, code)


def test_a_failure_summary_is_one_escaped_line() -> None:
    """A run stopped by an error says so, its message on one line."""
    assert failure_summary("send", "bad <thing>\nhere") == (
        "## curator send: failed\n\nbad \\<thing\\> here\n"
    )


CONFIG = """\
newsletter:
  to: [ann@example.org, "Bob Reader <bob@example.org>"]
fetch: {{retries: 0, timeout: 5}}
feeds:
  - name: Ron
    url: {ron}
  - name: Broken
    url: {broken}
"""


def test_send_and_fetch_append_their_summaries_with_no_address(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GITHUB_STEP_SUMMARY set, send and fetch each append a summary; the file names
    the broken feed and counts the recipients without naming one."""
    ron = feed_server.add(
        "/ron.xml", rss([Item("Lead well", "https://ron.example/a", utc("2026-11-25T10:00"))])
    )
    broken = feed_server.add("/broken.xml", Route(status=500))
    config = write_config(tmp_path, CONFIG.format(ron=ron, broken=broken))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    assert run_cli(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 0
    assert run_cli(config, "fetch", "--now", "2026-11-26T08:30:00Z")[0] == 0
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## curator send 2026-W48: done\n")
    assert "| 2026-W48 | 1 | 1 | delivered | 2 | 0 | 0 |" in text
    assert "| Broken | failed | HTTP 500" in text
    assert "## curator fetch: done" in text
    assert "| Broken | resting | failed once" in text
    assert "example.org" not in text and "Bob" not in text


def test_a_refused_send_leaves_a_failure_summary(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outbox send in CI is refused, and the summary says why."""
    ron = feed_server.add("/ron.xml", Route(status=500))
    broken = feed_server.add("/broken.xml", Route(status=500))
    config = write_config(tmp_path, CONFIG.format(ron=ron, broken=broken))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert run_cli(config, "send", "--now", "2026-11-26T08:00:00Z")[0] == 2
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## curator send: failed\n")
    assert "is outbox, and this is CI" in text
