"""What the email chooses from a feed: the picture, the excerpt's ending, the duration, the
title, which same-title posts are one story, and the lead.

Each behaviour reads a small feed the project owns under tests/data/email/, with the expected
result beside it where it is more than a line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from curator import normalize as nz
from curator.models import EntryData, Post
from curator.parse import parse_feed
from curator.select import choose_lead, lead_strength, posts_for_issue, same_story
from digest_samples import post_from_entry

DATA = Path(__file__).parent / "data" / "email"
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@cache
def entries(name: str) -> dict[str, EntryData]:
    """The entries of tests/data/email/NAME, by guid (a plain guid, or the item's link)."""
    parsed = parse_feed((DATA / name).read_bytes(), f"https://feeds.example/{name}")
    return {e.link or "" if e.key.startswith("url:") else e.key[3:]: e for e in parsed.entries}


def expected(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return result


def posts_of(name: str, first_id: int = 1) -> list[Post]:
    feed_url = f"https://feeds.example/{name}"
    return [
        post_from_entry(e, first_id + i, feed_url, name.removesuffix(".xml"))
        for i, e in enumerate(entries(name).values())
    ]


# ---------------------------------------------------------------- pictures

PICTURES = expected("pictures.expected.json")


@pytest.mark.parametrize("case", sorted(PICTURES))
def test_a_post_shows_only_a_real_picture_preferring_declared_ones(case: str) -> None:
    """Audio, video, smilies, emoji, pixels, spacers and icons are never the picture;
    media:thumbnail, image media:content, itunes:image and image enclosures come first."""
    entry = entries("pictures.xml")[case]
    assert {"image": entry.image, "width": entry.image_width} == PICTURES[case]


def test_the_podcast_fixture_uses_the_episode_art_not_its_mp3() -> None:
    """The reported podcast: its MP3 in media:content is no image; its itunes:image is."""
    episode = entries("podcast.xml")["pod-212"]
    assert episode.image == "https://podcast.example.org/212-cover.jpg"
    assert ".mp3" not in (episode.image or "")


@pytest.mark.parametrize(
    ("candidates", "chosen"),
    [
        ([nz.ImageCandidate("https://a.example/ep.mp3", mime="audio/mpeg")], None),
        ([nz.ImageCandidate("https://a.example/stream", medium="video")], None),
        ([nz.ImageCandidate("https://a.example/file.mp3?x=1")], None),
        ([nz.ImageCandidate("https://a.example/wp-includes/images/smilies/icon_wink.gif")], None),
        ([nz.ImageCandidate("https://a.example/p.gif", width=1, height=1, declared=False)], None),
        ([nz.ImageCandidate("https://a.example/spacer.gif", declared=False)], None),
        ([nz.ImageCandidate("https://a.example/a.jpg?w=1&h=2", declared=False)], None),
        (
            [
                nz.ImageCandidate("https://a.example/inline.jpg", declared=False),
                nz.ImageCandidate("https://a.example/declared.jpg"),
            ],
            "https://a.example/declared.jpg",
        ),
        (
            [
                nz.ImageCandidate("https://a.example/show-cover.jpg", rank=1),
                nz.ImageCandidate("https://a.example/thumb.jpg", width=640),
            ],
            "https://a.example/thumb.jpg",
        ),
        (
            [
                nz.ImageCandidate("https://a.example/small.jpg", width=150),
                nz.ImageCandidate("https://a.example/large.jpg", mime="image/jpeg", width=1200),
            ],
            "https://a.example/large.jpg",
        ),
    ],
)
def test_choose_picture_table(candidates: list[nz.ImageCandidate], chosen: str | None) -> None:
    """No picture is better than a bad one; declared beats inline; wider beats narrower."""
    picture = nz.choose_picture(candidates)
    assert (picture.url if picture else None) == chosen


@pytest.mark.parametrize(
    ("url", "size"),
    [
        ("https://i0.wp.example/desk.jpg?w=100&h=70", (100, 70)),
        ("https://a.example/uploads/desk-150x150.jpg", (150, 150)),
        ("https://cdn.example/image/fetch/w_1456,c_limit/x.jpg", (1456, None)),
        ("https://a.example/photo.jpg?resize=640%2C480", (640, 480)),
        ("https://a.example/photo.jpg", (None, None)),
    ],
)
def test_a_url_says_how_wide_its_picture_is(url: str, size: tuple[int | None, int | None]) -> None:
    """Size hints in image URLs are read, so a small thumbnail is never stretched."""
    assert nz.size_from_url(url) == size


# ---------------------------------------------------------------- excerpts

EXCERPTS = expected("excerpts.expected.json")


@pytest.mark.parametrize("case", sorted(EXCERPTS))
def test_an_excerpt_ends_at_a_sentence_end_or_with_an_ellipsis(case: str) -> None:
    """Trailers go as whole sentences; "[...]" and "[&hellip;]" become "…"; long text is cut
    at a sentence end or marked "…", in scripts with and without spaces."""
    excerpt = entries("excerpts.xml")[case].excerpt
    assert excerpt == EXCERPTS[case]
    assert excerpt.endswith((".", "!", "?", "…", "。"))
    assert len(excerpt) <= 320


@pytest.mark.parametrize(
    ("text", "excerpt"),
    [
        (
            "Check 'em out by clicking the read more link!",
            "Check 'em out by clicking the read more link!",
        ),
        (
            "It's still very basic and currently setup [...]",
            "It's still very basic and currently setup…",
        ),
        ("It works. [&hellip;]", "It works."),
        ("It works [&#8230;] Read more", "It works…"),
        ("Good stuff here. Continue reading →", "Good stuff here."),
        ('Good stuff here Continue reading "The title"', "Good stuff here…"),
        ("A thing. The post A thing appeared first on Blog.", "A thing."),
        (
            "Read more about the budget in the attached report.",
            "Read more about the budget in the attached report.",
        ),
        ("First sentence. Second one is cut", "First sentence. Second one is cut…"),
        ("Good. Read more at Ann's blog", "Good."),
        ("Good. Read more in the attached report.", "Good. Read more in the attached report."),
        ("文章です。次の文。", "文章です。次の文。"),
        ("あ" * 400, "あ" * 319 + "…"),
    ],
)
def test_excerpt_text_table(text: str, excerpt: str) -> None:
    """Excerpt endings, trailer by trailer, including a sentence that only mentions "read more"."""
    assert nz.excerpt_text(text, 320) == excerpt


def test_a_text_post_that_repeats_its_title_has_no_excerpt() -> None:
    """A Tumblr text post whose body is its title shows no excerpt (the title says it)."""
    assert entries("tumblr.xml")["https://quietlight.example.tumblr.com/post/1000"].excerpt == ""


# ---------------------------------------------------------------- durations

DURATIONS = expected("durations.expected.json")


@pytest.mark.parametrize("case", sorted(DURATIONS))
def test_audio_and_video_posts_show_their_duration(case: str) -> None:
    """HH:MM:SS, MM:SS and seconds become "45 min listen" / "12 min watch"; a post with no
    text and no duration shows no time at all."""
    entry = entries("durations.xml")[case]
    (post,) = [p for p in posts_of("durations.xml") if p.key == entry.key]
    want = DURATIONS[case]
    assert (entry.duration, entry.media_kind, post.time_label) == (
        want["duration"],
        want["kind"],
        want["label"],
    )


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("2:58:41", 10721),
        ("02:58:41", 10721),
        ("45:12", 2712),
        ("2715", 2715),
        ("2715.6", 2716),
        (2715, 2715),
        ("", None),
        (None, None),
        ("0", None),
        ("soon", None),
        ("105000000", None),
    ],
)
def test_parse_duration_table(raw: object, seconds: int | None) -> None:
    """itunes:duration in every form feeds write it; missing or nonsense gives None."""
    assert nz.parse_duration(raw) == seconds


# ---------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("guid", "title"),
    [
        ("https://twice.example.org/item", "Item Title"),
        ("https://twice.example.org/bold", "Bold & brave"),
        ("https://twice.example.org/table", "Why <table> is slow"),
    ],
)
def test_titles_are_plain_text_even_when_escaped_twice(guid: str, title: str) -> None:
    """``<![CDATA[&lt;p&gt;Item Title&lt;/p&gt;]]>`` shows as "Item Title"; a literal
    ``<table>`` in a title is kept."""
    assert entries("double-encoded-title.xml")[guid].title == title


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("&lt;p&gt;Item Title&lt;/p&gt;", "Item Title"),
        ("<![CDATA[&lt;p&gt;Item Title&lt;/p&gt;]]>", "Item Title"),
        ("&lt;em class=x&gt;Now&lt;/em&gt; or never", "Now or never"),
        ("Why &lt;table&gt; is slow", "Why <table> is slow"),
        ("Use &lt;/div&gt; wisely", "Use </div> wisely"),
        ("Fish &amp;amp; chips", "Fish &amp; chips"),
    ],
)
def test_clean_title_table(raw: str, title: str) -> None:
    """Markup escaped twice is removed; a literal tag name in a title is kept."""
    assert nz.clean_title(raw) == title


def test_characters_xml_forbids_are_removed_from_titles_and_text() -> None:
    """U+FFFE and U+FFFF never reach a title or an excerpt (they would break feed.xml)."""
    entry = entries("xml-invalid-characters.xml")["https://twice.example.org/bytes"]
    assert entry.title == "Broken bytes in a title"
    assert entry.excerpt == "Text with a stray character."


# ---------------------------------------------------------------- dedupe


def test_distinct_posts_with_one_title_all_stay() -> None:
    """Four replies titled "Re: new maintainer and mailing list" are four posts."""
    posts = posts_of("same-title.xml")
    chosen = posts_for_issue(posts, now=NOW, since=NOW - timedelta(days=7), max_posts_per_feed=9)
    assert len(chosen.posts) == 4


def test_a_republished_story_appears_once() -> None:
    """The same story under another feed's URL, a day later, with the same body, is one."""
    original = posts_of("republished-original.xml")
    copy = posts_of("republished-copy.xml", first_id=10)
    chosen = posts_for_issue(original + copy, now=NOW, since=NOW - timedelta(days=7))
    assert [p.link for p in chosen.posts] == ["https://annlee.example.org/2026/11/one-on-ones"]


@pytest.mark.parametrize(
    ("other_excerpt", "same"),
    [
        ("The first body of this post, word for word.", True),
        ("The first body of this post, word for word, and then some more text after it.", True),
        ("A completely different reply about the DNS.", False),
        ("", False),
    ],
)
def test_same_title_is_one_story_only_with_a_matching_body(other_excerpt: str, same: bool) -> None:
    """Same title, a day apart, different URLs: one story only when the bodies match."""
    base = posts_of("same-title.xml")[0]
    first = base.__class__(
        **{**base.__dict__, "excerpt": "The first body of this post, word for word."}
    )
    other = base.__class__(
        **{**base.__dict__, "id": 99, "link": "https://else.example/x", "canonical_url": None,
           "excerpt": other_excerpt}
    )  # fmt: skip
    assert same_story(first, other, NOW) is same


# ---------------------------------------------------------------- the lead


def test_a_photo_post_with_no_text_never_leads_over_a_real_post() -> None:
    """The newest post is a Tumblr "Photo" with no words; the lead is a post with text."""
    tumblr = posts_of("tumblr.xml")
    essay = posts_of("republished-original.xml", first_id=20)
    chosen = posts_for_issue(tumblr + essay, now=NOW, since=NOW - timedelta(days=7))
    assert chosen.posts[0].title == "Why your one-on-ones feel like status meetings"
    assert [lead_strength(p) for p in tumblr] == [0, 1]
    assert lead_strength(essay[0]) == 2


def _writer_post(id_: int, feed: str, days_ago: float) -> Post:
    return Post(
        id=id_, feed_url=f"https://{feed}.example/feed", feed_name=feed, key=f"k{id_}",
        title=f"A considered essay number {id_}", link=f"https://{feed}.example/{id_}",
        canonical_url=f"https://{feed}.example/{id_}", author=None,
        published=NOW - timedelta(days=days_ago), first_seen=NOW - timedelta(days=days_ago),
        excerpt=f"Some thoughtful words for essay {id_}.", word_count=800,
    )  # fmt: skip


def test_the_lead_rotates_among_writers_over_several_weeks() -> None:
    """A prolific writer with the newest post every week does not lead every week."""
    leads: list[Post] = []
    for week in range(4):
        posts = [
            _writer_post(100 * week + 1, "prolific", 0.1),
            _writer_post(100 * week + 2, "prolific", 0.2),
            _writer_post(100 * week + 3, "steady", 1),
            _writer_post(100 * week + 4, "rare", 2),
        ]
        lead = choose_lead(posts, recent_leads=[p.feed_url for p in reversed(leads)], now=NOW)
        leads.append(lead)
    assert [p.feed_name for p in leads] == ["prolific", "steady", "rare", "prolific"]


def test_with_no_history_the_newest_strong_post_leads() -> None:
    """The first issue leads with the newest post that has a real title and text."""
    posts = [_writer_post(1, "a", 3), _writer_post(2, "b", 1), _writer_post(3, "c", 2)]
    assert choose_lead(posts, recent_leads=(), now=NOW).id == 2


def test_a_json_feed_episode_shows_its_art_and_duration() -> None:
    """A JSON Feed item's audio attachment gives the duration; its image is the picture."""
    (entry,) = parse_feed(
        (DATA / "podcast.json").read_bytes(), "https://jsonhour.example.org/feed.json"
    ).entries
    assert (entry.image, entry.media_kind, entry.duration) == (
        "https://jsonhour.example.org/9-art.jpg",
        "audio",
        2712,
    )


SHOW = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>The Show</title><link>https://show.example/</link>
<itunes:image href="https://show.example/cover-3000.jpg"/>
<item><title>Episode 12: on delegation</title><link>https://show.example/12</link>
<guid>ep12</guid><description>We talk about handing work over.</description>
<enclosure url="https://cdn.example/ep12.mp3" type="audio/mpeg" length="1234"/>
<itunes:duration>45:10</itunes:duration></item>
<item><title>Show notes without audio</title><link>https://show.example/notes</link>
<guid>notes</guid><description>Just text.</description></item>
</channel></rss>"""


def test_an_episode_without_art_shows_the_shows_cover_and_a_text_post_nothing() -> None:
    """An audio episode with no picture of its own takes the channel's itunes:image (as podcast
    apps do); a text post of the same feed gets no picture rather than the show's logo."""
    from curator.parse import parse_feed

    parsed = parse_feed(SHOW, "https://show.example/feed", "application/rss+xml")
    episode, notes = parsed.entries
    assert episode.image == "https://show.example/cover-3000.jpg"
    assert episode.media_kind == "audio" and episode.duration == 45 * 60 + 10
    assert notes.image is None
