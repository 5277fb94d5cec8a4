"""The Postmark backend against respx: batches of 500, per-recipient answers into the ledger,
and whole-call failures (401, 5xx, no connection) that mark nobody sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

from curator.deliver import build_message
from curator.errors import DeliveryError
from curator.models import DeliveryResult, NewsletterConfig, PostmarkConfig
from curator.postmark import PostmarkSender
from curator.sender import Outgoing

ENDPOINT = "https://api.postmarkapp.com/email/batch"
NEWSLETTER = NewsletterConfig(title="Lead Weekly", from_addr="Lead Weekly <digest@example.org>")


def outgoing(count: int) -> list[Outgoing]:
    return [
        build_message(
            newsletter=NEWSLETTER,
            recipient=f"r{n}@example.org",
            subject="Lead Weekly: week 48",
            html="<p>hello</p>",
            text="hello",
            period="2026-W48",
            round_=1,
            date=datetime(2026, 11, 26, 8, tzinfo=UTC),
        )
        for n in range(count)
    ]


@respx.mock
def test_a_readers_copy_keeps_its_reply_to_and_the_auto_reply_headers(
    sender: PostmarkSender,
) -> None:
    """Reply-To (with the reader's token), Auto-Submitted and X-Auto-Response-Suppress reach
    Postmark, so replies find their reader and Exchange sends no out-of-office reply."""
    route = respx.post(ENDPOINT).mock(side_effect=ok)
    reply_to = "reflect+abc@example.org"
    message = build_message(
        newsletter=NEWSLETTER,
        recipient="r0@example.org",
        subject="Lead Weekly: week 48",
        html="<p>hello</p>",
        text="hello",
        period="2026-W48",
        round_=1,
        date=datetime(2026, 11, 26, 8, tzinfo=UTC),
        headers=(("Reply-To", reply_to),),
    )
    _, error = collect(sender, [message])
    body = json.loads(route.calls[0].request.content)[0]
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert error is None and body["ReplyTo"] == reply_to
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["X-Auto-Response-Suppress"] == "All"


def ok(request: httpx.Request) -> httpx.Response:
    batch = json.loads(request.content)
    return httpx.Response(
        200,
        json=[{"ErrorCode": 0, "Message": "OK", "MessageID": f"id-{m['To']}"} for m in batch],
    )


@pytest.fixture
def sender() -> Iterator[PostmarkSender]:
    client = httpx.Client()
    yield PostmarkSender(PostmarkConfig(token="server-token"), client)
    client.close()


def collect(
    sender: PostmarkSender, messages: list[Outgoing], handed: list[str] | None = None
) -> tuple[list[DeliveryResult], DeliveryError | None]:
    results: list[DeliveryResult] = []
    try:
        for result in sender.deliver(messages, (handed if handed is not None else []).extend):
            results.append(result)
    except DeliveryError as exc:
        return results, exc
    return results, None


@respx.mock
def test_501_recipients_take_two_calls_and_all_are_sent(sender: PostmarkSender) -> None:
    """501 messages go as one batch of 500 and one of 1, each with token and stream."""
    route = respx.post(ENDPOINT).mock(side_effect=ok)
    handed: list[str] = []
    results, error = collect(sender, outgoing(501), handed)
    assert error is None
    assert [len(json.loads(call.request.content)) for call in route.calls] == [500, 1]
    first = route.calls[0].request
    assert first.headers["X-Postmark-Server-Token"] == "server-token"
    body = json.loads(first.content)[0]
    assert body["MessageStream"] == "broadcast"
    assert body["To"] == "r0@example.org"
    assert {h["Name"] for h in body["Headers"]} >= {"List-Id", "Message-ID"}
    assert [r.status for r in results] == ["sent"] * 501
    assert results[7].detail == "Postmark id-r7@example.org"
    assert len(handed) == 501


@respx.mock
def test_per_recipient_answers_map_to_sent_failed_and_pending(sender: PostmarkSender) -> None:
    """In one batch: 0 is sent, 406 (inactive) failed for good, 429 left pending."""
    answers = [
        {"ErrorCode": 0, "Message": "OK", "MessageID": "a"},
        {"ErrorCode": 406, "Message": "Inactive recipient"},
        {"ErrorCode": 429, "Message": "Rate limit"},
        {"ErrorCode": 300, "Message": "Invalid 'To' address"},
    ]
    respx.post(ENDPOINT).mock(return_value=httpx.Response(200, json=answers))
    results, error = collect(sender, outgoing(4))
    assert error is None
    assert [(r.recipient, r.status) for r in results] == [
        ("r0@example.org", "sent"),
        ("r1@example.org", "failed"),
        ("r2@example.org", "pending"),
        ("r3@example.org", "failed"),
    ]
    assert "Inactive recipient" in results[1].detail


@pytest.mark.parametrize(
    ("status", "says", "results"),
    [
        (401, "refused the server token", 2),
        (422, "refused the batch", 2),
        (500, "not taking messages right now", 2),
        (503, "not taking messages right now", 2),
        (429, "not taking messages right now", 2),
    ],
)
@respx.mock
def test_a_failed_call_marks_nobody_sent_and_stops(
    sender: PostmarkSender, status: int, says: str, results: int
) -> None:
    """401, 422, 429 and 5xx: every recipient of the batch pending, one error, no next batch."""
    route = respx.post(ENDPOINT).mock(
        return_value=httpx.Response(status, json={"ErrorCode": 10, "Message": "nope"})
    )
    got, error = collect(sender, outgoing(2))
    assert error is not None
    assert says in str(error)
    assert error.hint
    assert [r.status for r in got] == ["pending"] * results
    assert route.call_count == 1


@respx.mock
def test_401_hint_names_the_token_variable(sender: PostmarkSender) -> None:
    """A refused token says which variable to fix."""
    respx.post(ENDPOINT).mock(return_value=httpx.Response(401, json={"ErrorCode": 10}))
    _, error = collect(sender, outgoing(1))
    assert error is not None
    assert "CURATOR_POSTMARK_TOKEN" in error.hint


@respx.mock
def test_no_connection_keeps_the_batch_pending(sender: PostmarkSender) -> None:
    """A connection error marks the batch pending and stops with a network hint."""
    respx.post(ENDPOINT).mock(side_effect=httpx.ConnectError("no route"))
    got, error = collect(sender, outgoing(3))
    assert error is not None
    assert "cannot reach Postmark" in str(error)
    assert [r.status for r in got] == ["pending"] * 3


@respx.mock
def test_an_account_problem_marks_nobody_failed(sender: PostmarkSender) -> None:
    """A sender-signature error is about the account: sent ones stay sent, nobody failed."""
    answers = [
        {"ErrorCode": 0, "Message": "OK", "MessageID": "a"},
        {"ErrorCode": 400, "Message": "Sender signature not found"},
    ]
    respx.post(ENDPOINT).mock(return_value=httpx.Response(200, json=answers))
    got, error = collect(sender, outgoing(2))
    assert error is not None
    assert "sender signature" in str(error)
    assert [r.status for r in got] == ["sent", "pending"]


@respx.mock
def test_the_same_300_for_every_message_is_not_blamed_on_recipients(
    sender: PostmarkSender,
) -> None:
    """When Postmark refuses every message alike, the request is wrong, not the readers."""
    answers = [{"ErrorCode": 300, "Message": "Invalid 'From' address"}] * 3
    respx.post(ENDPOINT).mock(return_value=httpx.Response(200, json=answers))
    got, error = collect(sender, outgoing(3))
    assert error is not None
    assert "Invalid 'From' address" in str(error)
    assert [r.status for r in got] == ["pending"] * 3


def test_a_missing_token_is_refused_before_any_call() -> None:
    """Without CURATOR_POSTMARK_TOKEN the sender is not even built."""
    with pytest.raises(DeliveryError, match="CURATOR_POSTMARK_TOKEN"):
        PostmarkSender(PostmarkConfig(token=None))
