"""Property tests: whatever a feed holds, the email stays inert and its headers stay whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curator.deliver import build_message
from curator.models import IssueDraft, NewsletterConfig, Post, QuestionChoice
from curator.parse import parse_feed
from curator.render import render_issue
from curator.select import period_for
from digest_samples import post_from_entry
from safety import header_problems, html_problems, message_parts, squash

NOW = datetime(2026, 11, 26, 8, tzinfo=UTC)

HOSTILE_BITS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<iframe src='javascript:alert(1)'></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="width: expression(alert(1))">x</p>',
    "<object data=x></object><embed src=x><form action=x><input></form>",
    "\r\nBcc: victim@example.org\r\n",
    "=?utf-8?q?Subject=3A_hi=0D=0ABcc=3A_x=40y?=",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#106;avascript:alert(1)",
    "\x00\x01\x07\x1b[31m",
    "\u202e\u2028\u2029\ufeff",
    "]]><![CDATA[",
    "vbscript:msgbox(1)",
]

text_atoms = st.one_of(
    st.text(max_size=40),
    st.sampled_from(HOSTILE_BITS),
    st.text(
        alphabet=st.characters(codec="utf-8", categories=["Cc", "Zs", "Zl", "Zp", "Cf"]), max_size=5
    ),
)
hostile_text = st.lists(text_atoms, min_size=0, max_size=4).map("".join)
links = st.one_of(
    st.sampled_from([
        "https://example.org/post",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        "/relative/path?x=1#frag",
        'https://example.org/"><script>alert(1)</script>',
        "https://example.org/\r\nBcc: x@y",
        "mailto:a@b.org",
        "",
    ]),
    hostile_text,
)  # fmt: skip


def _xml_text(value: str) -> str:
    # Only characters XML 1.0 allows can be in a well-formed feed; the rest is what a broken
    # feed would hold, which feedparser repairs or drops.
    allowed = "".join(
        ch
        for ch in value
        if ch in "\t\n\r" or (" " <= ch <= "\ud7ff") or ("\ue000" <= ch <= "\ufffd")
    )
    return escape(allowed)


entries = st.lists(
    st.fixed_dictionaries(
        {"title": hostile_text, "link": links, "author": hostile_text, "content": hostile_text}
    ),
    min_size=1,
    max_size=5,
)


def _feed(items: list[dict[str, str]]) -> bytes:
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>']
    parts.append("<title>t</title><link>https://example.org/</link><description>d</description>")
    for i, item in enumerate(items):
        published = (NOW - timedelta(hours=i + 1)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        parts.append(
            f"<item><title>{_xml_text(item['title'])}</title><link>{_xml_text(item['link'])}</link>"
            f"<author>{_xml_text(item['author'])}</author><pubDate>{published}</pubDate>"
            f"<guid>id-{i}</guid><description>{_xml_text(item['content'])}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def _posts(body: bytes, feed_name: str) -> list[Post]:
    parsed = parse_feed(body, "https://example.org/feed.xml", "application/rss+xml")
    url = "https://example.org/feed.xml"
    return [post_from_entry(e, i, url, feed_name) for i, e in enumerate(parsed.entries)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=entries, feed_name=hostile_text, question=hostile_text)
def test_any_feed_gives_an_inert_email_with_whole_headers(
    items: list[dict[str, str]], feed_name: str, question: str
) -> None:
    """No exception; no active HTML; one of each header; every title in the text part."""
    name = squash(feed_name.replace("\x00", "")) or "A feed"
    posts = _posts(_feed(items), name)
    draft = IssueDraft(
        period=period_for(NOW, "weekly", "UTC"),
        posts=tuple(posts),
        more=(),
        question=QuestionChoice(question or "Are you leading?", "test"),
    )
    newsletter = NewsletterConfig(
        title="Lead Weekly",
        from_addr="Lead Weekly <digest@example.org>",
        subject="{{ title }}: {{ lead_title }}",
        unsubscribe="https://example.org/unsubscribe",
    )
    rendered = render_issue(draft, newsletter)
    message = build_message(
        newsletter=newsletter,
        recipient="reader@example.org",
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        period=draft.period.key,
        round_=1,
        date=NOW,
    )
    raw = message.message.as_bytes()
    assert header_problems(raw, unsubscribe=True) == []
    text, html = message_parts(raw)
    assert html_problems(html) == []
    flat_text = squash(text)
    for post in posts:
        assert squash(post.title) in flat_text
