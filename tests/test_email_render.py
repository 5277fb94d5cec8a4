"""The email a reader keeps, as rendered: pictures drawn at honest sizes, durations in place
of reading times, thumbnails with alt text, the text part wrapped by display width with every
link on its own line, and the way to the web copy (``archive.url``) in the email, the archive
pages and the Atom feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import FeedServer, Item, rss, utc, write_config
from curator.config import load_config
from curator.errors import ConfigError
from curator.models import ArchivedIssue, ArchivedPost, IssueDraft
from curator.render import display_width, render_archive, render_issue, wrap_text
from digest_samples import NEWSLETTER, SOURCES
from email_week import ARCHIVE_URL, week_draft, week_posts

GMAIL_CLIP = 102 * 1024
IMG = re.compile(r"<img\b[^>]*>")


def attr(tag: str, name: str) -> str | None:
    match = re.search(rf'\b{name}="([^"]*)"', tag)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def week() -> tuple[IssueDraft, str, str]:
    draft = week_draft()
    issue = render_issue(draft, NEWSLETTER, sources=SOURCES, archive_url=ARCHIVE_URL)
    return draft, issue.html, issue.text


def test_no_picture_is_drawn_wider_than_its_known_width(week: tuple[IssueDraft, str, str]) -> None:
    """The ?w=100&h=70 thumbnail is drawn at most 100 px wide, never stretched to the card."""
    _, html, _ = week
    by_src = {p.image: p for p in week_posts() if p.image}
    tags = IMG.findall(html)
    assert tags
    for tag in tags:
        src = (attr(tag, "src") or "").replace("&amp;", "&")
        post = by_src[src]
        width = int(attr(tag, "width") or 0)
        assert 0 < width <= 528
        if post.image_width:
            assert width <= post.image_width, tag
        assert f"width: {width}px" in tag or "width: 100%" in tag or "max-width: 96px" in tag
    small = next(t for t in tags if "desk.jpg" in t)
    assert attr(small, "width") == "96"


def test_the_lead_picture_fills_the_card_only_when_it_is_wide_enough() -> None:
    """A lead picture known to be 400 px wide is drawn at 400 px, not 100% of the card."""
    draft = week_draft()
    lead = replace(
        draft.posts[0], image="https://a.example/p.jpg", image_width=400, image_height=300
    )
    html = render_issue(replace(draft, posts=(lead, *draft.posts[1:])), NEWSLETTER).html
    tag = next(t for t in IMG.findall(html) if "a.example/p.jpg" in t)
    assert attr(tag, "width") == "400"
    assert attr(tag, "height") == "300"
    assert "width: 400px" in tag
    assert ";width: 100%" not in tag


def test_no_image_source_is_audio_or_video(week: tuple[IssueDraft, str, str]) -> None:
    """The podcast's MP3 never becomes an <img>; its episode art does."""
    _, html, _ = week
    sources = [attr(t, "src") or "" for t in IMG.findall(html)]
    assert not [s for s in sources if re.search(r"\.(mp3|m4a|mp4)\b", s)]
    assert "https://podcast.example.org/212-cover.jpg" in sources


def test_other_posts_get_thumbnails_with_alt_text_that_says_something(
    week: tuple[IssueDraft, str, str],
) -> None:
    """Non-lead posts with a good picture get a small thumbnail whose alt names the post."""
    _, html, _ = week
    thumbs = [t for t in IMG.findall(html) if 'class="thumb"' in t]
    assert len(thumbs) >= 4
    for tag in thumbs:
        assert int(attr(tag, "width") or 0) <= 96
        assert (attr(tag, "alt") or "").startswith("Picture for")
    assert len(html.encode()) < GMAIL_CLIP


def test_episodes_show_how_long_they_run_and_empty_posts_show_no_time(
    week: tuple[IssueDraft, str, str],
) -> None:
    """The three-hour episode says "2 hr 59 min listen", not "1 min read"; the wordless
    "Photo" post says no time at all, in both parts."""
    _, html, text = week
    for part in (html, text):
        assert "2 hr 59 min listen" in part
    photo = text.split("\nPhoto\n", 1)[1].split("\n", 1)[0]
    assert photo == "Thu 26 Nov"


def test_each_email_links_to_its_own_web_page(week: tuple[IssueDraft, str, str]) -> None:
    """With archive.url set, both parts say "View in your browser" with the page's address."""
    draft, html, text = week
    page = f"{ARCHIVE_URL}{draft.period.key}.html"
    assert f'<a href="{page}"' in html
    assert "View in your browser" in html
    assert f"View in your browser:\n{page}\n" in text
    bare = render_issue(draft, NEWSLETTER, sources=SOURCES)
    assert "View in your browser" not in bare.html
    assert "View in your browser" not in bare.text


def test_text_part_fits_78_columns_by_display_width_and_links_stand_alone(
    week: tuple[IssueDraft, str, str],
) -> None:
    """Japanese, Chinese and Korean lines fit 78 columns as a terminal counts them, and every
    link in the text part is a line of its own."""
    _, _, text = week
    assert "東京の小さな出版社" in text
    for line in text.splitlines():
        assert display_width(line) <= 78 or re.fullmatch(r"https?://\S+", line), line
        for url in re.findall(r"https?://\S+", line):
            assert line.strip() == url, line


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("あいうえお かきくけこ", 10, ["あいうえお", "かきくけこ"]),
        ("日本語の文章。次の文。", 14, ["日本語の文章。", "次の文。"]),
        ("日本語の文章。次の文。", 13, ["日本語の文", "章。次の文。"]),
        ("see https://a.example/x now", 40, ["see", "https://a.example/x", "now"]),
        ("plain words only here", 10, ["plain", "words only", "here"]),
    ],
)
def test_wrap_text_table(text: str, width: int, lines: list[str]) -> None:
    """Wide characters count two columns; closing punctuation never starts a line; links
    get lines of their own."""
    assert wrap_text(text, width).splitlines() == lines


# ---------------------------------------------------------------- the archive

BUILT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def archived(html: str = "<html><body><p>issue</p></body></html>") -> ArchivedIssue:
    return ArchivedIssue(
        "2026-W48",
        "Lead weekly: Week of 23\ufffe–29 November",
        BUILT,
        html,
        "Are you leading\uffff or managing?",
        (ArchivedPost("A post\ufffe title", "https://a.example/p", "A\uffff source"),),
    )


def test_with_archive_url_the_feed_and_pages_use_absolute_links() -> None:
    """feed.xml's self, alternate and entry links and the pages' way back are absolute."""
    files = render_archive([archived()], NEWSLETTER, archive_url=ARCHIVE_URL)
    feed = ET.fromstring(files["feed.xml"])
    hrefs = [link.get("href") or "" for link in feed.iter("{http://www.w3.org/2005/Atom}link")]
    assert hrefs == [
        f"{ARCHIVE_URL}feed.xml",
        f"{ARCHIVE_URL}index.html",
        f"{ARCHIVE_URL}2026-W48.html",
    ]
    assert f'href="{ARCHIVE_URL}index.html"' in files["2026-W48.html"]
    assert f'href="{ARCHIVE_URL}2026-W48.html"' in files["index.html"]


def test_without_archive_url_the_archive_links_stay_relative() -> None:
    """Unset, the archive still works from any folder: its links are relative."""
    files = render_archive([archived()], NEWSLETTER)
    assert '<link rel="self" href="feed.xml"/>' in files["feed.xml"]
    assert 'href="2026-W48.html"' in files["feed.xml"]


def test_the_feed_stays_valid_xml_whatever_the_titles_held() -> None:
    """U+FFFE and U+FFFF in a stored subject, question or post title never reach feed.xml."""
    text = render_archive([archived()], NEWSLETTER, archive_url=ARCHIVE_URL)["feed.xml"]
    assert "\ufffe" not in text
    assert "\uffff" not in text
    ET.fromstring(text)


def test_an_archived_page_has_no_view_in_your_browser_link() -> None:
    """On the web copy itself the link to the web copy is left out."""
    draft = week_draft()
    issue = render_issue(draft, NEWSLETTER, archive_url=ARCHIVE_URL)
    page = render_archive([archived(issue.html)], NEWSLETTER, archive_url=ARCHIVE_URL)[
        "2026-W48.html"
    ]
    assert "View in your browser" in issue.html
    assert "View in your browser" not in page
    assert draft.posts[0].title in page


def test_an_archived_page_has_no_invitation_to_reply() -> None:
    """An issue frozen with replies on invites a reply under the question; its web copy, for
    anyone to read, leaves the invitation and the place of a reader's block out."""
    draft = week_draft()
    issue = render_issue(draft, NEWSLETTER, personal_marker=True)
    page = render_archive([archived(issue.html)], NEWSLETTER)["2026-W48.html"]
    assert "Reply to this email" in issue.html and "curator:personal" in issue.html
    assert 'reply with the word "stop"' in issue.html and 'the word "stop"' in issue.text
    assert "Reply to this email" not in page and "curator:personal" not in page
    assert '"stop"' not in page
    assert draft.question is not None and draft.question.text in page


# ---------------------------------------------------------------- archive.url


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("https://me.github.io/digest", "https://me.github.io/digest/"),
        ("https://digest.example.org/archive/", "https://digest.example.org/archive/"),
    ],
)
def test_archive_url_is_read_and_ends_in_a_slash(tmp_path: Path, value: str, url: str) -> None:
    """archive.url is where the folder is published; page names are joined onto it."""
    path = write_config(tmp_path, f"archive:\n  url: {value}\nfeeds:\n  - https://a.example/\n")
    assert load_config(path, env={}).archive_url == url


def test_a_bad_archive_url_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    """A URL that is not http(s) is refused with file, line and key."""
    path = write_config(
        tmp_path, "archive:\n  url: ftp://x.example/\nfeeds:\n  - https://a.example/\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value).startswith(f"{path}:2: archive.url: 'ftp://x.example/' is not")


def test_thumbnails_are_the_first_thing_left_out_for_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """An issue just over the size limit loses its thumbnails, keeps its excerpts, and says so."""
    from curator import render

    draft = week_draft()
    full = render_issue(draft, NEWSLETTER).html
    monkeypatch.setattr(render, "HTML_LIMIT", len(full.encode()) - 1)
    issue = render_issue(draft, NEWSLETTER)
    assert issue.notes == ("thumbnails left out to stay under Gmail's clipping size",)
    assert 'class="thumb"' not in issue.html
    assert 'class="lead-image"' in issue.html
    assert draft.posts[1].excerpt[:40] in issue.html.replace("&#39;", "'")


def test_a_send_with_archive_url_links_each_email_to_its_published_page(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Through `curator send`: the email says where its web copy is, and feed.xml's links
    are absolute under archive.url."""
    from typer.testing import CliRunner

    from curator.cli import app

    feed_server.add(
        "/ron.xml",
        rss([Item("Lead from the middle", "https://ron.example/middle/", utc("2026-11-24T10:00"))]),
    )
    config = write_config(
        tmp_path,
        f"newsletter:\n  to: [ann@example.org]\nfeeds:\n  - {feed_server.url('/ron.xml')}\n"
        f"archive:\n  url: {ARCHIVE_URL}\n",
    )
    result = CliRunner().invoke(app, ["--config", str(config), "send", "--now", "2026-11-26"])
    assert result.exit_code == 0, result.stderr
    (message,) = (tmp_path / "outbox").glob("*.eml")
    raw = message.read_bytes().decode()
    assert f"{ARCHIVE_URL}2026-W48.html" in raw
    feed = ET.parse(tmp_path / "archive" / "feed.xml").getroot()
    links = [link.get("href") for link in feed.iter("{http://www.w3.org/2005/Atom}link")]
    assert links == [
        f"{ARCHIVE_URL}feed.xml",
        f"{ARCHIVE_URL}index.html",
        f"{ARCHIVE_URL}2026-W48.html",
    ]
    page = (tmp_path / "archive" / "2026-W48.html").read_text()
    assert "View in your browser" not in page


def test_over_several_sends_the_lead_goes_round_the_writers(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Through `curator send` week after week: the prolific writer has the newest post every
    week, yet the lead passes to the others in turn, read from the issue history."""
    import email
    import email.policy

    from typer.testing import CliRunner

    from curator.cli import app

    names = ("prolific", "steady", "rare")
    config = write_config(
        tmp_path,
        "newsletter:\n  to: [ann@example.org]\nfeeds:\n"
        + "".join(f"  - {feed_server.url(f'/{n}.xml')}\n" for n in names),
    )
    leads = []
    # Each week the prolific writer posts last, the rare one first.
    for send_day, post_days in (("2026-11-29", (25, 24, 23)), ("2026-12-06", (4, 3, 2)),
                                ("2026-12-13", (11, 10, 9))):  # fmt: skip
        month = send_day[:8]
        for name, day in zip(names, post_days, strict=True):
            feed_server.add(
                f"/{name}.xml",
                rss([Item(f"The {name} essay", f"https://{name}.example/{send_day}",
                          utc(f"{month}{day:02d}T10:00"))]),
            )  # fmt: skip
        result = CliRunner().invoke(app, ["--config", str(config), "send", "--now", send_day])
        assert result.exit_code == 0, result.stderr
    for path in sorted((tmp_path / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        first = min(names, key=lambda n: text.find(f"The {n} essay"))
        leads.append(first)
    assert leads == ["prolific", "steady", "rare"]


def test_korean_lines_break_only_between_words() -> None:
    """A Korean post's title and excerpt break lines at spaces (word-break: keep-all), as
    Korean is read; a Latin-script post's text is left as it was."""
    from factories import make_post

    korean = make_post(
        1, "팀이 스스로 결정하게 하는 법", excerpt="리더는 결정을 내려놓을 때 팀이 자랍니다.",
        published=datetime(2026, 11, 25, 9, tzinfo=UTC),
    )  # fmt: skip
    latin = make_post(
        2, "Leading from the middle", excerpt="Most leaders never sit at the top.",
        feed="b", published=datetime(2026, 11, 24, 9, tzinfo=UTC),
    )  # fmt: skip
    draft = week_draft()
    html = render_issue(replace(draft, posts=(korean, latin), more=()), NEWSLETTER).html
    kept = re.findall(
        r"<(?:h2|h3|p)[^>]*word-break: ?keep-all[^>]*>([^<]*(?:<a[^>]*>[^<]*)?)", html
    )
    assert any("팀이" in k for k in kept) and any("리더는" in k for k in kept)
    assert not any("Leading" in k or "Most leaders" in k for k in kept)
