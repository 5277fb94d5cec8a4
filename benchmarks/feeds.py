"""Deterministic, WordPress-like feeds: RSS 2.0 with content:encoded, and Atom.

Every feed is a pure function of (seed, index): the same seed gives byte-identical bodies on
every machine, so two runs of the benchmark fetch and parse exactly the same work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

# The newest post of every feed is a little before this instant; `curator send --now` in the
# benchmark uses a moment just after it, so the first issue has posts to choose from.
NEWEST = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
MIN_ITEMS, MAX_ITEMS = 10, 50
# Targets for the body size; the generated bodies land between about 63 and 225 KB.
MIN_BYTES, MAX_BYTES = 63_000, 212_000

# A block of words reads better than a list of 85 quoted strings.
_WORDS = (  # noqa: SIM905 - see above
    "leadership team vision trust decision people culture change growth purpose meeting "
    "feedback delegation priority habit calendar courage conflict conversation mentor "
    "character influence strategy focus rest listen question clarity goal progress learn "
    "manage lead serve follow build create plan review reflect improve simple hard honest "
    "the a of and to in is that it for on with as at by from this be are was were will can "
    "your our their what when where which who how why not more most less very often always"
).split()


@dataclass(frozen=True)
class Feed:
    """One generated feed: its body and the headers a real server would send with it."""

    index: int
    kind: str  # "rss" or "atom"
    body: bytes
    content_type: str
    last_modified: str
    items: int


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 22))
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 7)))


def _article_html(rng: random.Random, target: int) -> str:
    """Post HTML of about ``target`` characters: headings, paragraphs, a list, an image."""
    parts: list[str] = []
    size = 0
    while size < target:
        roll = rng.random()
        if roll < 0.08:
            part = f"<h2>{_sentence(rng)[:60]}</h2>"
        elif roll < 0.14:
            items = "".join(f"<li>{_sentence(rng)}</li>" for _ in range(rng.randint(3, 5)))
            part = f"<ul>{items}</ul>"
        elif roll < 0.18:
            n = rng.randint(1000, 9999)
            part = (
                f'<figure><img src="/wp-content/uploads/2026/11/photo-{n}.jpg" '
                f'alt="{_sentence(rng)[:40]}" width="800" height="533"></figure>'
            )
        else:
            href = f"/{rng.choice(_WORDS)}-{rng.randint(1, 999)}/"
            link = f'<a href="{href}">{rng.choice(_WORDS)}</a>'
            part = f"<p>{_paragraph(rng)} See {link}.</p>"
        parts.append(part)
        size += len(part)
    return "\n".join(parts)


def make_feed(seed: int, index: int, base_url: str) -> Feed:
    """The feed number ``index`` for ``seed``, with links under ``base_url`` (no trailing /)."""
    rng = random.Random(seed * 1_000_003 + index)
    kind = "atom" if index % 5 == 4 else "rss"
    items = rng.randint(MIN_ITEMS, MAX_ITEMS)
    target = rng.randint(MIN_BYTES, MAX_BYTES)
    # Each item also carries ~1 KB of title, links, dates and excerpt around its HTML.
    per_item = max(400, target // items - 1000)
    title = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS).capitalize()} {index}"
    posts = []
    when = NEWEST - timedelta(minutes=rng.randint(0, 600))
    for n in range(items):
        slug = "-".join(rng.choices(_WORDS, k=4))
        posts.append(
            {
                "title": _sentence(rng)[:70].rstrip("."),
                "link": f"{base_url}/2026/{when.month:02d}/{slug}-{n}/",
                "guid": f"{base_url}/?p={10_000 + index * 100 + n}",
                "when": when,
                "author": f"{rng.choice(_WORDS).capitalize()} Writer",
                "category": rng.choice(_WORDS),
                "excerpt": _paragraph(rng)[:300],
                "html": _article_html(rng, per_item),
            }
        )
        when -= timedelta(hours=rng.randint(6, 60))
    newest = posts[0]["when"]
    assert isinstance(newest, datetime)
    if kind == "rss":
        body = _rss(title, base_url, posts, newest)
        content_type = "application/rss+xml; charset=UTF-8"
    else:
        body = _atom(title, base_url, posts, newest)
        content_type = "application/atom+xml; charset=UTF-8"
    return Feed(
        index=index,
        kind=kind,
        body=body.encode("utf-8"),
        content_type=content_type,
        last_modified=format_datetime(newest, usegmt=True),
        items=items,
    )


def _rss(title: str, base: str, posts: list[dict[str, object]], newest: datetime) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">',
        "<channel>",
        f"<title>{escape(title)}</title>",
        f'<atom:link href="{base}/feed/" rel="self" type="application/rss+xml" />',
        f"<link>{base}/</link>",
        "<description>Thoughts on leading people well</description>",
        f"<lastBuildDate>{format_datetime(newest, usegmt=True)}</lastBuildDate>",
        "<language>en-US</language>",
        "<generator>https://wordpress.org/?v=6.7</generator>",
    ]
    for p in posts:
        when = p["when"]
        assert isinstance(when, datetime)
        out += [
            "<item>",
            f"<title>{escape(str(p['title']))}</title>",
            f"<link>{p['link']}</link>",
            f"<dc:creator><![CDATA[{p['author']}]]></dc:creator>",
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>",
            f"<category><![CDATA[{p['category']}]]></category>",
            f'<guid isPermaLink="false">{p["guid"]}</guid>',
            f"<description><![CDATA[{p['excerpt']} [&#8230;]]]></description>",
            f"<content:encoded><![CDATA[{p['html']}]]></content:encoded>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out)


def _atom(title: str, base: str, posts: list[dict[str, object]], newest: datetime) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
        f"<title>{escape(title)}</title>",
        f'<link rel="alternate" type="text/html" href="{base}/"/>',
        f'<link rel="self" type="application/atom+xml" href="{base}/feed/"/>',
        f"<id>{base}/</id>",
        f"<updated>{newest.isoformat()}</updated>",
    ]
    for p in posts:
        when = p["when"]
        assert isinstance(when, datetime)
        out += [
            "<entry>",
            f"<title>{escape(str(p['title']))}</title>",
            f'<link rel="alternate" type="text/html" href="{p["link"]}"/>',
            f"<id>{p['guid']}</id>",
            f"<published>{when.isoformat()}</published>",
            f"<updated>{when.isoformat()}</updated>",
            f"<author><name>{escape(str(p['author']))}</name></author>",
            f'<category term="{p["category"]}"/>',
            f'<summary type="html">{escape(str(p["excerpt"]))}</summary>',
            f'<content type="html">{escape(str(p["html"]))}</content>',
            "</entry>",
        ]
    out += ["</feed>", ""]
    return "\n".join(out)


def malformed(feed: Feed) -> bytes:
    """A body cut off mid-item with a stray unescaped ampersand: what a broken plugin sends."""
    cut = feed.body[: len(feed.body) // 2]
    return cut + b"<item><title>Tips & tricks</titl><description>never closed"
