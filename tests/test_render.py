"""The rendered issue: golden files for a fixed week, email-client rules, size and safety.

Golden files live in tests/data/. After an intended change to the templates, regenerate them
with ``CURATOR_UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conftest import corpus_dir
from curator import render
from curator.errors import RenderError
from curator.models import IssueDraft, NewsletterConfig, Post, RenderedIssue
from curator.render import render_issue
from digest_samples import NEWSLETTER, PERIOD, SOURCES, corpus_posts, fixture_posts, sample_draft
from safety import html_problems

DATA = Path(__file__).parent / "data"
UPDATE = os.environ.get("CURATOR_UPDATE_GOLDEN") == "1"
GMAIL_CLIP = 102 * 1024


def golden(name: str, actual: str) -> None:
    """Compare with tests/data/NAME, or write it when CURATOR_UPDATE_GOLDEN=1."""
    path = DATA / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with CURATOR_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")


# A fragment is the element that carries one of these classes, from its opening tag to its
# closing tag (none of them nest an element of the same name).
FRAGMENT_CLASSES = ("kicker", "brand", "question", "lead-image", "lead-title", "source",
                    "post-title", "more-item", "footer-rule")  # fmt: skip


def html_fragments(html: str) -> str:
    parts = re.findall(r"<style>.*?</style>", html, re.S)
    for cls in FRAGMENT_CLASSES:
        pattern = rf'<(\w+)[^>]*\bclass="{cls}"[^>]*>(?:.*?</\1>)?'
        parts += [m.group(0) for m in re.finditer(pattern, html, re.S)]
    return "\n\n".join(parts) + "\n"


@pytest.fixture(scope="module")
def issue() -> RenderedIssue:
    return render_issue(sample_draft(), NEWSLETTER, sources=SOURCES)


def test_text_part_matches_golden_file(issue: RenderedIssue) -> None:
    """The plain-text part of the fixed issue is exactly tests/data/issue.txt."""
    golden("issue.txt", issue.text)


def test_html_fragments_match_golden_file(issue: RenderedIssue) -> None:
    """The key HTML fragments (styles, header, question, posts, footer) match the golden file."""
    golden("issue.fragments.html", html_fragments(issue.html))


def test_subject_is_the_configured_template(issue: RenderedIssue) -> None:
    """newsletter.subject is a template; the default names the title and the period."""
    assert issue.subject == "Lead, Don't Just Manage: Week of 23–29 November 2026"
    custom = replace(NEWSLETTER, subject="{{ title }} #{{ period }}: {{ lead_title }}\nBcc: x")
    subject = render_issue(sample_draft(), custom).subject
    assert subject.startswith("Lead, Don't Just Manage #2026-W48: Seven things")
    assert "\n" not in subject


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def tags_of(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def test_html_follows_email_client_rules(issue: RenderedIssue) -> None:
    """lang, presentation tables at most 600 px, images with width and alt, a preheader."""
    parsed = tags_of(issue.html)
    (html_tag,) = [a for t, a in parsed.tags if t == "html"]
    assert html_tag["lang"] == "en"
    tables = [a for t, a in parsed.tags if t == "table"]
    assert tables
    assert all(a.get("role") == "presentation" for a in tables)
    assert all(
        int(a.get("width") or "600") <= 600 for a in tables if "%" not in (a.get("width") or "")
    )
    images = [a for t, a in parsed.tags if t == "img"]
    assert images
    assert all(a.get("width") and a.get("alt") for a in images)
    assert 'style="display: none;' in issue.html.replace("display:none", "display: none")
    assert "Is there an area of your life" in issue.html.split("<table", 1)[0]


def test_css_is_inlined_and_only_media_rules_stay(issue: RenderedIssue) -> None:
    """Every rule but @media is inlined; the <style> blocks left hold @media rules only."""
    parsed = tags_of(issue.html)
    for css in parsed.styles:
        without_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)
        assert without_media.strip() == "", without_media
    assert "prefers-color-scheme: dark" in issue.html
    title_tag = re.search(r'<h2 class="lead-title" style="([^"]+)"', issue.html)
    assert title_tag
    assert "font-family" in title_tag.group(1)


def luminance(hex_color: str) -> float:
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


# (text colour, background) pairs the template uses, light then dark.
COLOUR_PAIRS = [
    ("#333a44", "#ffffff"), ("#5b6470", "#ffffff"), ("#1d4e89", "#ffffff"),
    ("#8a4b12", "#ffffff"), ("#8a4b12", "#fbf3e4"), ("#1d2a3a", "#fbf3e4"),
    ("#d5d9de", "#1d2228"), ("#aab2bc", "#1d2228"), ("#9ccbff", "#1d2228"),
    ("#f0b074", "#1d2228"), ("#f0b074", "#2a2620"), ("#f1f3f5", "#2a2620"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "background"), COLOUR_PAIRS)
def test_colours_have_good_contrast_in_light_and_dark(
    issue: RenderedIssue, text: str, background: str
) -> None:
    """Every text colour the template uses meets WCAG AA (4.5:1) on its background."""
    assert text in issue.html
    assert background in issue.html
    low, high = sorted((luminance(text), luminance(background)))
    assert (high + 0.05) / (low + 0.05) >= 4.5


def test_text_part_is_wrapped_under_78_columns(issue: RenderedIssue) -> None:
    """Every line but a bare link fits in 78 columns, and the parts carry the same content."""
    for line in issue.text.splitlines():
        assert len(line) < 78 or re.fullmatch(r"https?://\S+", line), line
    draft = sample_draft()
    for post in (*draft.posts, *draft.more):
        assert post.link is not None
        for part in (issue.text, issue.html):
            assert post.link in part
            assert post.feed_name in part or post.feed_name.upper() in part
        assert post.title in issue.text.replace("\n", " ")
    assert draft.question is not None
    assert draft.question.text in issue.html


def test_footer_names_sources_failures_reason_and_unsubscribe(issue: RenderedIssue) -> None:
    """The footer lists sources read, a note for a failed one, why, and the unsubscribe link."""
    for part in (issue.text, " ".join(issue.html.split())):
        assert "Read this week: Ron Edmondson, Michael Hyatt, Carey Nieuwhof." in part
        assert "Could not be read this week: Seth's Blog" in part.replace("&#39;", "'")
        assert "You get this email because you subscribed to" in part
        assert "https://lead.example.org/unsubscribe" in part
    bare = render_issue(sample_draft(), replace(NEWSLETTER, unsubscribe=None), sources=SOURCES)
    assert "Unsubscribe" not in bare.html
    assert "Unsubscribe" not in bare.text


def test_question_only_week_says_there_are_no_posts() -> None:
    """An empty week with empty_week: question sends the question and says why it is alone."""
    draft = replace(sample_draft(), posts=(), more=())
    issue = render_issue(draft, NEWSLETTER)
    for part in (issue.text, issue.html):
        assert "No new posts from your writers this week" in part
        assert "rise up and lead?" in " ".join(part.split())


def test_resurfaced_post_is_introduced_as_such() -> None:
    """An archive week says the post is an older one the reader may have missed."""
    draft = replace(sample_draft(), posts=sample_draft().posts[:1], more=(), resurfaced=True)
    issue = render_issue(draft, NEWSLETTER)
    assert "here is one from the archive" in issue.text
    assert "here is one from the archive" in issue.html


def test_a_users_template_overrides_the_built_in_one_by_name(tmp_path: Path) -> None:
    """A file in the user's templates folder replaces the built-in template of that name only."""
    (tmp_path / "issue.txt.j2").write_text("{{ title }} / {{ question }}\n", encoding="utf-8")
    issue = render_issue(sample_draft(), NEWSLETTER, templates_dir=tmp_path)
    assert issue.text.startswith("Lead, Don't Just Manage / Is there an area")
    assert "lead-title" in issue.html


def test_a_broken_user_template_is_a_render_error(tmp_path: Path) -> None:
    """A syntax error in the user's template names the file and line."""
    (tmp_path / "issue.html.j2").write_text("line one\n{% if %}\n", encoding="utf-8")
    with pytest.raises(RenderError, match=r"issue.html.j2:2"):
        render_issue(sample_draft(), NEWSLETTER, templates_dir=tmp_path)


# ---------------------------------------------------------------- size and safety

FORBIDDEN = re.compile(
    r"<\s*(script|iframe|object|embed|form|applet)\b|\son\w+\s*=|(href|src)\s*=\s*[\"']?\s*"
    r"(javascript|data|vbscript):",
    re.I,
)


def big_issue(posts: list[Post]) -> IssueDraft:
    return IssueDraft(PERIOD, tuple(posts), (), sample_draft().question)


def _safe_links_only(html: str) -> None:
    for tag, attrs in tags_of(html).tags:
        for name in ("href", "src"):
            value = attrs.get(name)
            if value is not None:
                assert re.match(r"(https?|mailto):", value), (tag, value)


def test_every_hostile_post_of_our_own_feed_renders_inert() -> None:
    """Each way tests/data/feeds/xss.xml tries to run code renders as inert text or nothing."""
    posts = fixture_posts("xss")
    assert len(posts) == 10
    issue = render_issue(big_issue(posts), NEWSLETTER, sources=SOURCES)
    # Parsed, not searched: the escaped text "onerror=" in a title is words, not a handler.
    assert html_problems(issue.html) == []
    _safe_links_only(issue.html)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in issue.html  # shown, not dropped


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("excerpt", "The tag <script>alert(2)</script> is shown; 5 < 6 & 7 > 3."),
        ("title", "<script>alert(2)</script> in a title; 5 < 6 & 7 > 3."),
        ("feed_name", "<script>alert(2)</script> as a source; 5 < 6 & 7 > 3."),
        ("author", "<script>alert(2)</script> as an author; 5 < 6 & 7 > 3."),
    ],
)
def test_markup_in_plain_text_is_shown_as_text_not_run(field: str, value: str) -> None:
    """Text that reads as markup is escaped wherever it appears; a `|safe` on any of these
    fields in a template makes this fail, every time."""
    lead, *rest = sample_draft().posts
    fields: dict[str, Any] = {field: value}
    draft = replace(sample_draft(), posts=(replace(lead, **fields), *rest))
    issue = render_issue(draft, NEWSLETTER)
    # A quoted attribute (an image's alt) may hold a raw "<"; a parser sees no tag there.
    assert html_problems(issue.html) == []
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in issue.html
    assert "5 &lt; 6 &amp; 7 &gt; 3." in issue.html


def _size(posts: list[Post], monkeypatch: pytest.MonkeyPatch) -> int:
    """The issue's HTML size with no limit at all."""
    monkeypatch.setattr(render, "HTML_LIMIT", 10**9)
    return len(render_issue(big_issue(posts), NEWSLETTER).html.encode())


@pytest.mark.parametrize("step", ["shortened", "left out", "link list"])
def test_an_oversized_issue_trims_excerpts_before_posts(
    monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Past the limit, excerpts shrink first, then go, then posts become links; each is said.

    The limits are measured on tests/data/feeds/long-reads.xml: just under the full size
    (shorter excerpts fit), exactly the size without excerpts, and one byte under that."""
    posts = fixture_posts("long-reads")
    assert len(posts) == 40
    full = _size(posts, monkeypatch)
    bare = _size([replace(p, excerpt="") for p in posts], monkeypatch)
    limit, expected_note = {
        "shortened": (full - 1, "excerpts shortened"),
        "left out": (bare, "excerpts left out"),
        "link list": (bare - 1, "posts moved to the link list"),
    }[step]
    monkeypatch.setattr(render, "HTML_LIMIT", limit)
    issue = render_issue(big_issue(posts), NEWSLETTER)
    assert len(issue.html.encode()) <= limit
    assert any(expected_note in note for note in issue.notes), issue.notes
    for post in posts:  # no post is lost: each is a full post or a link
        assert post.link is not None
        assert post.link in issue.html
        assert post.link in issue.text
    if step == "link list":
        assert "posts are listed as links only" in issue.html
        assert "excerpts left out" in " ".join(issue.notes)
    else:
        assert len(re.findall(r'class="post-title"', issue.html)) == len(posts) - 1


def test_even_links_are_dropped_last_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """When even the link list does not fit, links are left out and the email says how many."""
    posts = fixture_posts("long-reads")
    lead_alone = _size([replace(posts[0], excerpt="")], monkeypatch)
    limit = lead_alone + 1500  # room for a few links, far from all 39
    monkeypatch.setattr(render, "HTML_LIMIT", limit)
    issue = render_issue(big_issue(posts), NEWSLETTER)
    assert len(issue.html.encode()) <= limit
    assert any("links left out" in note for note in issue.notes)
    assert "more posts were left out for size" in " ".join(issue.text.split())
    assert posts[0].title in issue.html.replace("&#39;", "'").replace("&amp;", "&")


# ---------------------------------------------------------------- the shared corpus, as an extra


@pytest.mark.corpus
def test_forty_corpus_posts_stay_unclipped_and_safe() -> None:
    """40 posts from real and hostile feeds: under 102 KB, no active content, only safe links."""
    corpus = corpus_dir()
    posts = corpus_posts(corpus, 30) + corpus_posts(corpus, 10, folder="hostile/xss")
    posts = [replace(p, id=i) for i, p in enumerate(posts)]
    assert len(posts) == 40
    issue = render_issue(big_issue(posts), NEWSLETTER, sources=SOURCES)
    assert len(issue.html.encode()) < GMAIL_CLIP
    assert FORBIDDEN.search(issue.html) is None
    _safe_links_only(issue.html)
    assert all(p.title.split()[0] in issue.text for p in posts if p.title.split())


@pytest.mark.corpus
def test_every_hostile_post_renders_without_active_content() -> None:
    """Every post of the sanitizer corpus renders with no script, handler or bad link."""
    posts = corpus_posts(corpus_dir(), 500, folder="hostile/xss")
    assert len(posts) > 50
    issue = render_issue(big_issue(posts), replace(NEWSLETTER, max_posts=500))
    assert FORBIDDEN.search(issue.html) is None


def test_default_newsletter_renders_without_optional_parts() -> None:
    """With every optional part absent (intro, image, unsubscribe) the issue still renders."""
    draft = replace(sample_draft(), question=None)
    issue = render_issue(draft, NewsletterConfig())
    assert issue.subject.startswith("curator weekly")
    assert "This week's question" not in issue.html


def test_a_post_from_another_year_shows_its_year() -> None:
    """Dates carry the year only when it is not the issue's: an old post never looks new."""
    draft = sample_draft()
    first, second = draft.posts[0], draft.posts[1]
    assert first.published is not None and second.published is not None
    old_date = second.published.replace(year=2024)
    old = replace(second, published=old_date)
    issue = render_issue(replace(draft, posts=(first, old)), NEWSLETTER)
    flat = " ".join(issue.text.split())
    assert f"{old_date:%a} {old_date.day} {old_date:%b} 2024" in flat
    assert f"{first.published.day} {first.published:%b} ·" in flat
