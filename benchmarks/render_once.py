"""Time one render of a 40-post issue in a fresh process, as `curator send` pays for it.

The figure includes building the Jinja2 environment, compiling both templates and inlining the
CSS (what every run pays once), but not the Python start-up or imports, which the start-up
scenario measures separately.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from curator.models import IssueDraft, NewsletterConfig, Period, Post, QuestionChoice

POSTS = 40


def sample_draft(posts: int = POSTS) -> IssueDraft:
    """A week with ``posts`` posts from ten writers, 300-character excerpts and a question."""
    start = datetime(2026, 11, 23, tzinfo=UTC)
    words = ("lead", "team", "trust", "vision", "people", "decision", "habit", "growth")
    items = []
    for n in range(posts):
        excerpt = " ".join(words[(n + k) % len(words)] for k in range(55))[:300]
        items.append(
            Post(
                id=n + 1,
                feed_url=f"https://writer{n % 10}.example/feed/",
                feed_name=f"Writer {n % 10}",
                key=f"post-{n}",
                title=f"Post number {n}: what {words[n % len(words)]} asks of you",
                link=f"https://writer{n % 10}.example/2026/11/post-{n}/",
                canonical_url=None,
                author=f"Author {n % 10}",
                published=start + timedelta(hours=3 * n),
                first_seen=start + timedelta(hours=3 * n),
                excerpt=excerpt,
                word_count=900 + 37 * n,
            )
        )
    period = Period("2026-W48", "Week 48, 2026", start, start + timedelta(days=7))
    question = QuestionChoice("Are you leading or managing?", "next in the bank")
    return IssueDraft(period=period, posts=tuple(items), more=(), question=question)


def main() -> None:
    """Print the milliseconds one render of the sample draft took."""
    from curator.render import render_issue

    draft = sample_draft()
    newsletter = NewsletterConfig(title="Benchmark Weekly")
    started = time.perf_counter()
    rendered = render_issue(draft, newsletter)
    elapsed = time.perf_counter() - started
    if not rendered.html or not rendered.text:
        raise SystemExit("render produced an empty part")
    print(f"{elapsed * 1000:.1f}")
