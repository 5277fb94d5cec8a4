"""The loop at the seams send will use: two readers over three weeks, replies through a
Maildir, each copy's own parts frozen with the issue and read back."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta
from pathlib import Path

from curator.render import PERSONAL_MARKER_HTML, PERSONAL_MARKER_TEXT, insert_personal
from curator.replies import active_recipients, collect_replies, personal_copies
from curator.store import Store
from reply_kit import freeze, replies_config, reply_email

WEEK1 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ANN, BOB = "ann@example.com", "Bob <bob@example.com>"
SHARED_HTML = f"<p>How are you going to do it?</p>{PERSONAL_MARKER_HTML}<p>posts</p>"
SHARED_TEXT = f"How are you going to do it?\n{PERSONAL_MARKER_TEXT}\nposts"


def _week(store: Store, config_path: Path, n: int, recipients: tuple[str, ...]) -> int:
    """Freeze week n's issue with every reader's own parts, in one transaction."""
    config = replies_config(config_path.parent, maildir=config_path.parent / "box")
    built = WEEK1 + timedelta(weeks=n - 1)
    with store.transaction():
        issue = freeze(store, f"2026-W{9 + n}", built, "How are you going to do it?", *recipients)
        copies = personal_copies(
            config, store, issue_id=issue, period=f"2026-W{9 + n}", issue_date=built,
            recipients=recipients, now=built,
        )  # fmt: skip
        store.save_personal_copies(issue, copies)
    return issue


def _reply(box: mailbox.Maildir, store: Store, issue: int, reader: str, text: str) -> None:
    reply_to = dict(store.personal_copies(issue)[reader].headers)["Reply-To"]
    box.add(reply_email(reply_to, text, message_id=f"<{issue}-{len(box)}@x>"))


def test_two_readers_three_weeks_each_copy_shows_only_its_own_answer(tmp_path: Path) -> None:
    """Week 2 gives each reader back their own week-1 answer; a stop by reply in week 2 leaves
    that reader out of week 3; copies read back from the state are the ones frozen."""
    config_path = tmp_path / "feeds.yaml"
    config = replies_config(tmp_path, maildir=tmp_path / "box")
    box = mailbox.Maildir(tmp_path / "box", create=True)
    with Store.open(tmp_path / "state.db") as store:
        one = _week(store, config_path, 1, (ANN, BOB))
        assert all(c.html == "" for c in store.personal_copies(one).values())
        _reply(box, store, one, ANN, "I will hand the budget review to Sam.")
        _reply(box, store, one, BOB, "Delegate the hiring loop.")
        assert collect_replies(config, store, WEEK1 + timedelta(days=2)).answers == 2

        two = _week(store, config_path, 2, active_recipients((ANN, BOB), store))
        copies = store.personal_copies(two)
        ann_html = insert_personal(SHARED_HTML, copies[ANN].html, "html")
        bob_text = " ".join(insert_personal(SHARED_TEXT, copies[BOB].text, "text").split())
        assert "budget review to Sam" in ann_html and "hiring loop" not in ann_html
        assert "hiring loop" in bob_text and "budget" not in bob_text
        assert PERSONAL_MARKER_HTML not in ann_html
        _reply(box, store, two, BOB, "STOP")
        _reply(box, store, two, ANN, "Done: Sam has it.")
        report = collect_replies(config, store, WEEK1 + timedelta(days=9))
        assert (report.answers, report.unsubscribes, report.already_seen) == (1, 1, 2)

        recipients = active_recipients((ANN, BOB), store)
        three = _week(store, config_path, 3, recipients)
        third = store.personal_copies(three)
    assert recipients == (ANN,)
    assert set(third) == {ANN}
    third_text = " ".join(third[ANN].text.split())
    assert "Done: Sam has it." in third_text and "budget" not in third_text
    headers = dict(third[ANN].headers)
    assert headers["Reply-To"].startswith("reflect+") and "ann" not in headers["Reply-To"]
    assert headers["List-Unsubscribe"].startswith("<mailto:reflect+")


def test_issue_rendered_with_the_marker_takes_each_readers_block() -> None:
    """The shared body carries the marker under the question only when asked; a reader's
    block replaces it and an empty block leaves no marker, only the invitation to reply."""
    from curator.render import render_issue
    from digest_samples import NEWSLETTER, SOURCES, sample_draft

    plain = render_issue(sample_draft(), NEWSLETTER, sources=SOURCES)
    shared = render_issue(sample_draft(), NEWSLETTER, sources=SOURCES, personal_marker=True)
    assert PERSONAL_MARKER_HTML not in plain.html and PERSONAL_MARKER_TEXT not in plain.text
    assert PERSONAL_MARKER_HTML in shared.html and PERSONAL_MARKER_TEXT in shared.text
    filled = insert_personal(shared.html, "<p>MINE</p>", "html")
    assert filled.index("MINE") > filled.index(sample_draft().question.text)  # type: ignore[union-attr] # the sample has a question
    # An empty block leaves the shared body: the plain one plus the invitation to reply.
    without = insert_personal(shared.text, "", "text")
    assert PERSONAL_MARKER_TEXT not in without
    assert "Reply to this email with your answer." in without
    assert "Reply to this email" not in plain.text
    assert (
        without.replace(" ", "")
        .replace("\n", "")
        .startswith(plain.text.split("THIS WEEK'S QUESTION")[0].replace(" ", "").replace("\n", ""))
    )
