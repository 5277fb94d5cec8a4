"""Normalization as tables: identities, canonical URLs, dates, relative links, titles, excerpts,
word counts, images and authors. Each row is an input and what must come out of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from curator import normalize as nz
from curator.parse import parse_feed
from factories import make_post

# ---------------------------------------------------------------- identities


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # guid that moved to https, gained www. and tracking parameters
        (("http://blog.example/p/1", None), ("https://www.blog.example/p/1?utm_source=rss", None)),
        # trailing slash
        (("https://blog.example/p/1/", None), ("https://blog.example/p/1", None)),
        # a fragment survives the same changes around it
        (("http://blog.example/log#v2", None), ("https://www.blog.example/log/?ref=x#v2", None)),
        # host case and default port
        (("https://Blog.Example:443/p/1", None), ("https://blog.example/p/1", None)),
        # no guid: the link is the identity, and survives the same changes
        ((None, "http://blog.example/p/2?fbclid=abc"), (None, "https://blog.example/p/2")),
        # an opaque guid is kept exactly
        (("tag:blog.example,2026:1", "http://a/"), ("tag:blog.example,2026:1", "http://b/")),
    ],
)
def test_entry_key_survives_scheme_host_and_tracking_changes(
    first: tuple[str | None, str | None], second: tuple[str | None, str | None]
) -> None:
    """The same post under a changed-looking guid or link keeps one identity."""
    assert nz.entry_key(*first, "T", None) == nz.entry_key(*second, "T", None)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("https://blog.example/p/1", None), ("https://blog.example/p/2", None)),
        (("https://blog.example/?p=1", None), ("https://blog.example/?p=2", None)),
        (("tag:x,2026:1", None), ("tag:x,2026:2", None)),
        # single-page feeds tell posts apart by the fragment alone
        (("https://blog.example/log#v1", None), ("https://blog.example/log#v2", None)),
        ((None, "https://blog.example/log#v1"), (None, "https://blog.example/log")),
    ],
)
def test_entry_key_tells_different_posts_apart(
    first: tuple[str | None, str | None], second: tuple[str | None, str | None]
) -> None:
    """Different paths, meaningful query parameters and opaque ids stay distinct."""
    assert nz.entry_key(*first, "T", None) != nz.entry_key(*second, "T", None)


def test_entry_key_without_guid_or_link_hashes_title_and_date() -> None:
    """With neither guid nor link, the identity is a hash of title and date."""
    one = nz.entry_key(None, None, "Hello", "2026-11-20T10:00:00+00:00")
    assert one.startswith("hash:")
    assert one == nz.entry_key(None, "  ", "Hello", "2026-11-20T10:00:00+00:00")
    assert one != nz.entry_key(None, None, "Hello", "2026-11-21T10:00:00+00:00")
    assert one != nz.entry_key(None, None, "Hello!", "2026-11-20T10:00:00+00:00")


# ---------------------------------------------------------------- canonical URLs


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Blog.Example/Post", "https://blog.example/Post"),
        ("https://blog.example:443/a", "https://blog.example/a"),
        ("http://blog.example:8080/a", "http://blog.example:8080/a"),
        ("https://blog.example", "https://blog.example/"),
        ("https://blog.example/a#section-2", "https://blog.example/a"),
        ("https://b.example/a?utm_source=rss&utm_medium=feed", "https://b.example/a"),
        ("https://b.example/a?id=7&utm_campaign=x&fbclid=Y", "https://b.example/a?id=7"),
        ("https://b.example/a?MC_EID=1&gclid=2&_hsenc=3&id=7", "https://b.example/a?id=7"),
        # kept pieces stay byte for byte: no re-encoding, flags without values survive
        ("https://b.example/s?q=a%20b&flag&utm_term=z", "https://b.example/s?q=a%20b&flag"),
        ("https://b.example/s?q=a+b", "https://b.example/s?q=a+b"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("", None),
        (None, None),
        ("not a url", None),
        ("https://[bad/", None),
    ],
)
def test_canonical_url(url: str | None, canonical: str | None) -> None:
    """Scheme and host lower-cased, default port, trackers and fragment dropped, rest kept."""
    assert nz.canonical_url(url) == canonical


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/p/1", "https://blog.example/feed/", "https://blog.example/p/1"),
        ("p/1", "https://blog.example/feed/", "https://blog.example/feed/p/1"),
        ("//cdn.example/i.png", "https://blog.example/", "https://cdn.example/i.png"),
        ("https://other.example/x", "https://blog.example/", "https://other.example/x"),
        ("javascript:alert(1)", "https://blog.example/", None),
        ("data:text/html,hi", None, None),
        ("mailto:a@b.c", None, None),
        ("/relative-without-base", None, None),
        ("ftp://files.example/x", None, None),
        (" https://blog.example/\x00a ", None, "https://blog.example/a"),
        ('https://blog.example/"onmouseover', None, None),
    ],
)
def test_safe_http_url_makes_absolute_and_refuses_other_schemes(
    url: str, base: str | None, expected: str | None
) -> None:
    """Relative URLs resolve against the base; anything but http(s) is refused."""
    assert nz.safe_http_url(url, base) == expected


# ---------------------------------------------------------------- titles and text


@pytest.mark.parametrize(
    ("raw", "markup", "title"),
    [
        ("Fish &amp; Chips", True, "Fish & Chips"),
        ("A <b>bold</b> move", True, "A bold move"),
        ("  Line one\n\n   line two\t ", True, "Line one line two"),
        ("Caf&eacute; &#8220;quotes&#8221;", True, "Café “quotes”"),
        ("Evil<script>alert(1)</script> title", True, "Evil title"),
        ("Bell\x08and\x07whistle", True, "Bell and whistle"),
        ("Sep\u2028arated\u2029lines", True, "Sep arated lines"),
        ("soft\xadhyphen, zero\u200bwidth", True, "softhyphen, zerowidth"),
        ("\u202eevil\u202c reversed", False, "evil reversed"),
        ("پی\u200cاچ\u200cپی", False, "پی\u200cاچ\u200cپی"),
        # plain-text titles (Atom type="text", RSS text) keep what looks like markup
        ("Why <table> is slow & what to do", False, "Why <table> is slow & what to do"),
        ("Fish & Chips <3", False, "Fish & Chips <3"),
        ("Tabs\tand\nnewlines", False, "Tabs and newlines"),
        ("", True, "(untitled)"),
        (None, False, "(untitled)"),
    ],
)
def test_clean_title_is_plain_single_line_text(raw: str | None, markup: bool, title: str) -> None:
    """Entities decoded, tags removed (only when the title is HTML), whitespace collapsed."""
    assert nz.clean_title(raw, markup=markup) == title


def test_clean_title_caps_length_at_a_word() -> None:
    """A runaway title is cut to 300 characters at a word boundary."""
    title = nz.clean_title("word " * 200)
    assert len(title) <= 300
    assert title.endswith("word…")


@pytest.mark.parametrize(
    ("text", "limit", "excerpt"),
    [
        ("Short enough.", 50, "Short enough."),
        ("First sentence here. Second one runs on and on", 30, "First sentence here."),
        ("Is it? Yes! It is. And then more words", 22, "Is it? Yes! It is."),
        ("One two three four five six seven", 16, "One two three…"),
        ("Ends exactly here. More", 18, "Ends exactly here."),
        # a sentence end too early would waste the space: cut at a word instead
        ("Hi. this is a much longer sentence going on", 30, "Hi. this is a much longer…"),
        ("Supercalifragilisticexpialidocious", 10, "Supercali…"),
        ("这是第一句话。这是第二句话。这是第三句话", 15, "这是第一句话。这是第二句话。"),
        ("word, word, word, word", 12, "word, word…"),
    ],
)
def test_cut_text_prefers_sentence_then_word_boundary(text: str, limit: int, excerpt: str) -> None:
    """Excerpts end at a sentence if one is near, else at a word with an ellipsis."""
    assert nz.cut_text(text, limit) == excerpt
    assert len(nz.cut_text(text, limit)) <= limit


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>One</p><p>Two</p>", "One Two"),
        ("a<br>b<br/>c", "a b c"),
        ("<style>p{}</style><p>Shown</p><script>x()</script>", "Shown"),
        ("5 &lt; 6 &amp;&amp; 7 &gt; 6", "5 < 6 && 7 > 6"),
        ("<p>Unclosed <b>tags", "Unclosed tags"),
        ("no markup at all", "no markup at all"),
    ],
)
def test_plain_text_from_html(markup: str, text: str) -> None:
    """Readable text from an HTML fragment: blocks become spaces, scripts vanish."""
    assert nz.plain_text(markup) == text


@pytest.mark.parametrize(
    ("text", "words", "minutes"),
    [
        ("", 0, 1),
        ("one two three", 3, 1),
        ("word " * 460, 460, 2),
        ("word " * 2300, 2300, 10),
        ("这是一个测试", 3, 1),
        ("Python 是一种语言", 4, 1),
    ],
)
def test_word_count_and_reading_time(text: str, words: int, minutes: int) -> None:
    """Words counted (CJK characters at half a word each); reading time at 230 wpm, min 1."""
    assert nz.word_count(text) == words
    assert make_post(1, words=nz.word_count(text)).reading_minutes == minutes


@pytest.mark.parametrize(
    ("markup", "base", "image"),
    [
        ('<p><img src="/i/a.png"></p>', "https://b.example/post/", "https://b.example/i/a.png"),
        ("<img src='pic.jpg' alt=x>", "https://b.example/post/", "https://b.example/post/pic.jpg"),
        (
            '<img src="https://c.example/a.jpg?w=600&amp;h=400">',
            None,
            "https://c.example/a.jpg?w=600&h=400",
        ),
        (
            '<img src="https://feeds.feedburner.com/~r/x/1.gif"><img src="https://b.example/real.png">',
            None,
            "https://b.example/real.png",
        ),
        ('<img src="data:image/png;base64,AAAA">', "https://b.example/", None),
        ("<p>no image</p>", "https://b.example/", None),
        (None, None, None),
    ],
)
def test_first_image_is_absolute_http_and_not_a_tracker(
    markup: str | None, base: str | None, image: str | None
) -> None:
    """The first real picture, absolute, with HTML entities in its URL decoded."""
    assert nz.first_image(markup, base) == image


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Ann Lee", "Ann Lee"),
        ("ann@example.org (Ann Lee)", "Ann Lee"),
        ("noreply@blogger.com", None),
        ("  Ann\n Lee ", "Ann Lee"),
        ("<b>Ann</b>", "Ann"),
        ("", None),
        (None, None),
    ],
)
def test_author_name(raw: str | None, name: str | None) -> None:
    """A byline from an author field; a bare email address is not one."""
    assert nz.author_name(raw) == name


# ---------------------------------------------------------------- through the parser


def rss_item(inner: str, channel_extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>F</title>'
        f"<link>https://b.example/</link>{channel_extra}<item><title>T</title>{inner}</item>"
        "</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (
            "<pubDate>Thu, 26 Nov 2026 10:00:00 +0000</pubDate>",
            datetime(2026, 11, 26, 10, tzinfo=UTC),
        ),
        (
            "<pubDate>Thu, 26 Nov 2026 10:00:00 +0530</pubDate>",
            datetime(2026, 11, 26, 4, 30, tzinfo=UTC),
        ),
        (
            "<pubDate>Wed, 25 Nov 2026 22:00:00 -0800</pubDate>",
            datetime(2026, 11, 26, 6, tzinfo=UTC),
        ),
        (
            "<pubDate>Thu, 26 Nov 2026 10:00:00 GMT</pubDate>",
            datetime(2026, 11, 26, 10, tzinfo=UTC),
        ),
        (
            "<pubDate>Thu, 26 Nov 2026 10:00:00 EST</pubDate>",
            datetime(2026, 11, 26, 15, tzinfo=UTC),
        ),
        ("<pubDate>Sun, 05 Jul 2026 10:00:00 PDT</pubDate>", datetime(2026, 7, 5, 17, tzinfo=UTC)),
        ("<dc:date>2026-11-26T10:00:00+02:00</dc:date>", datetime(2026, 11, 26, 8, tzinfo=UTC)),
        ("<dc:date>2026-11-26T10:00:00Z</dc:date>", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        # across midnight and a year boundary: the offset moves the calendar date too
        (
            "<pubDate>Fri, 01 Jan 2027 01:00:00 +0300</pubDate>",
            datetime(2026, 12, 31, 22, tzinfo=UTC),
        ),
        ("<pubDate>not a date</pubDate>", None),
        ("<pubDate>Thu, 31 Feb 2026 10:00:00 +0000</pubDate>", None),
        ("", None),
    ],
)
def test_entry_dates_are_aware_utc_or_absent(date: str, expected: datetime | None) -> None:
    """Whatever zone or format the feed uses, the date is the same instant in UTC, or None."""
    (entry,) = parse_feed(rss_item(date), "https://b.example/feed").entries
    assert entry.published == expected
    if entry.published is not None:
        assert entry.published.tzinfo is UTC


def test_atom_updated_only_serves_as_published() -> None:
    """An Atom entry with only <updated> is dated by it."""
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><id>f</id>
      <entry><title>T</title><id>e</id><updated>2026-11-26T10:00:00-05:00</updated></entry></feed>"""
    (entry,) = parse_feed(body, "https://b.example/atom").entries
    assert entry.published == datetime(2026, 11, 26, 15, tzinfo=UTC)


ATOM_BASE = """<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://b.example/blog/">
<title>F</title><id>f</id><link href="/"/>
<entry xml:base="2026/"><title type="html">T</title><id>e</id><link href="post.html"/>
<content type="html">&lt;p&gt;See &lt;a href="other.html"&gt;this&lt;/a&gt;
&lt;img src="pic.png"&gt;&lt;/p&gt;</content></entry></feed>"""


@pytest.mark.parametrize(
    ("body", "feed_url", "link", "image"),
    [
        (
            rss_item('<link>/p/1</link><description>&lt;img src="/i/1.png"&gt;</description>'),
            "https://b.example/feed/",
            "https://b.example/p/1",
            "https://b.example/i/1.png",
        ),
        (
            rss_item('<link>p/1</link><description>&lt;img src="i.png"&gt;</description>'),
            "https://b.example/feed/",
            "https://b.example/feed/p/1",
            "https://b.example/feed/i.png",
        ),
        (
            ATOM_BASE.encode(),
            "https://elsewhere.example/atom.xml",
            "https://b.example/blog/2026/post.html",
            "https://b.example/blog/2026/pic.png",
        ),
        (
            rss_item("<link>javascript:alert(1)</link>"),
            "https://b.example/feed/",
            None,
            None,
        ),
    ],
)
def test_relative_links_and_images_become_absolute(
    body: bytes, feed_url: str, link: str | None, image: str | None
) -> None:
    """Relative links and image sources resolve against xml:base, else the feed's URL."""
    (entry,) = parse_feed(body, feed_url).entries
    assert entry.link == link
    assert entry.image == image


def test_plain_text_atom_title_keeps_its_angle_brackets() -> None:
    """An Atom type="text" title that mentions a tag keeps the words, unstripped."""
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom">
      <title type="text">A &lt;b&gt; feed</title><id>f</id>
      <entry><title type="text">Why &lt;table&gt; is slow</title><id>e</id></entry></feed>"""
    parsed = parse_feed(body, "https://b.example/atom")
    assert parsed.title == "A <b> feed"
    assert parsed.entries[0].title == "Why <table> is slow"


def test_excerpt_drops_feed_boilerplate_and_counts_words_from_content() -> None:
    """The excerpt comes from the summary without "The post ... appeared first" trailers;
    word count comes from the full content."""
    content = "<p>" + "word " * 500 + "</p>"
    inner = (
        "<description>A short summary. The post T appeared first on Blog.</description>"
        f"<content:encoded><![CDATA[{content}]]></content:encoded>"
    )
    body = rss_item(inner).replace(
        b"<rss ", b'<rss xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    )
    (entry,) = parse_feed(body, "https://b.example/feed").entries
    assert entry.excerpt == "A short summary."
    assert entry.word_count == 500
