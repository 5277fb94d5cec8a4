"""Delivery through Postmark's batch API, for lists that outgrow one SMTP login.

Up to 500 messages go in one call to ``/email/batch``; Postmark answers with one result per
message, in order, which maps straight onto the per-recipient ledger. Only this module and
:mod:`curator.fetch` import httpx.

How answers map to the ledger:

- HTTP 200, per message ``ErrorCode`` 0: sent (Postmark's MessageID is kept as the answer).
- ``ErrorCode`` 406 (inactive recipient) or 300 (invalid request) for some messages: failed for
  good. When every message of a batch got the same 300, the request is at fault, not the
  recipients: they stay pending and the run stops with Postmark's message.
- ``ErrorCode`` of an account problem (sender signature, credits, account pending): the run
  stops with a hint; nobody is marked failed.
- HTTP 401 / 403 / 422: the run stops with a hint; the batch stays pending.
- HTTP 429 or 5xx, a timeout or no connection: the batch stays pending and the run stops.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from curator.errors import DeliveryError
from curator.models import DeliveryResult, PostmarkConfig
from curator.sender import Handover, Outgoing, no_handover

BATCH_SIZE = 500
# Codes about one recipient, for good: inactive (bounced or complained), invalid request.
_FINAL_CODES = frozenset({300, 406})
# Codes about the account or the sender, the same for every message: fix and run again.
_ACCOUNT_CODES = {
    400: "Postmark has no sender signature for newsletter.from",
    401: "the sender signature for newsletter.from is not confirmed yet",
    405: "the Postmark account may not send (out of credits?)",
    412: "the Postmark account is pending approval",
    413: "the Postmark account may not send",
}


# The headers of a built message Postmark is given besides From, To, Subject and Reply-To.
_HEADERS = (
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Message-ID",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
)


def _payload(item: Outgoing, stream: str) -> dict[str, Any]:
    message = item.message
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    headers = [{"Name": name, "Value": str(message[name])} for name in _HEADERS if message[name]]
    payload = {
        "From": str(message["From"]),
        "To": str(message["To"]),
        "Subject": str(message["Subject"]),
        "TextBody": text.get_content() if text is not None else "",
        "HtmlBody": html.get_content() if html is not None else "",
        "Headers": headers,
        "MessageStream": stream,
    }
    if message["Reply-To"]:
        # A reader's copy: the reply address with its token (see "Replies" in README.md).
        payload["ReplyTo"] = str(message["Reply-To"])
    return payload


class PostmarkSender:
    """Sends through Postmark's batch endpoint; one HTTP call per 500 recipients."""

    def __init__(self, config: PostmarkConfig, client: httpx.Client | None = None) -> None:
        if not config.token:
            raise DeliveryError(
                "delivery.method is postmark but CURATOR_POSTMARK_TOKEN is not set",
                hint="export CURATOR_POSTMARK_TOKEN with your server token",
            )
        self.config = config
        self.client = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        self._own = client is None

    def deliver(
        self, messages: Sequence[Outgoing], handover: Handover = no_handover
    ) -> Iterator[DeliveryResult]:
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            yield from self._send_batch(batch, handover)

    def _send_batch(
        self, batch: Sequence[Outgoing], handover: Handover
    ) -> Iterator[DeliveryResult]:
        body = [_payload(item, self.config.message_stream) for item in batch]
        headers = {
            "Accept": "application/json",
            "X-Postmark-Server-Token": self.config.token or "",
        }
        handover([item.recipient for item in batch])
        try:
            response = self.client.post(self.config.endpoint, json=body, headers=headers)
        except httpx.HTTPError as exc:
            # Nothing is known about this batch: keep every recipient pending for the next run.
            # (After a read timeout Postmark may have taken it; the ledger marked the batch as
            # handed over, so the next run says they may get a second copy.)
            reason = str(exc) or type(exc).__name__
            yield from _pending(batch, f"Postmark unreachable: {reason}")
            raise DeliveryError(
                f"cannot reach Postmark at {self.config.endpoint}: {reason}",
                hint="check the network (and delivery.postmark.endpoint), then run again; "
                "undelivered recipients stay pending",
            ) from exc
        status = response.status_code
        if status != 200:
            # A definite answer: Postmark took none of the batch.
            yield from _pending(batch, f"Postmark answered {status}")
        if status in {401, 403}:
            raise DeliveryError(
                f"Postmark refused the server token ({status}): {_error_text(response)}",
                hint="check CURATOR_POSTMARK_TOKEN: it must be a server token, not the "
                "account token",
            )
        if status == 429 or status >= 500:
            raise DeliveryError(
                f"Postmark is not taking messages right now ({status})",
                hint="run curator send again later; undelivered recipients stay pending",
            )
        if status != 200:
            raise DeliveryError(
                f"Postmark refused the batch ({status}): {_error_text(response)}",
                hint="check delivery.postmark and newsletter.from",
            )
        answers = _answers(response, len(batch))
        if answers is None:
            yield from _pending(batch, "Postmark's answer was unreadable")
            raise DeliveryError(
                "Postmark's answer to a batch was unreadable; its recipients stay pending",
                hint="check delivery.postmark.endpoint points at /email/batch",
            )
        codes = [_code(answer) for answer in answers]
        account = next((code for code in codes if code in _ACCOUNT_CODES), None)
        if account is not None:
            # Yield what is known first: some messages may have gone before the problem.
            yield from _sent_or_pending(batch, answers)
            raise DeliveryError(
                f"{_ACCOUNT_CODES[account]} (Postmark {account})",
                hint="fix it in Postmark or newsletter.from, then run curator send again",
            )
        if len(set(codes)) == 1 and codes[0] == 300 and len(batch) > 1:
            message = str(answers[0].get("Message", ""))
            yield from _sent_or_pending(batch, answers)
            raise DeliveryError(
                f"Postmark refused every message of the batch: {message}",
                hint="check newsletter.from and newsletter.to",
            )
        for item, answer, code in zip(batch, answers, codes, strict=True):
            text = str(answer.get("Message", ""))
            if code == 0:
                yield DeliveryResult(item.recipient, "sent", f"Postmark {answer.get('MessageID')}")
            elif code in _FINAL_CODES:
                yield DeliveryResult(item.recipient, "failed", f"Postmark {code}: {text}")
            else:
                yield DeliveryResult(item.recipient, "pending", f"Postmark {code}: {text}")

    def check_token(self) -> str:
        """Ask Postmark who this token belongs to (``GET /server``, which reads and changes
        nothing); return the server's name, or raise DeliveryError saying what to fix."""
        parts = urlsplit(self.config.endpoint)
        url = f"{parts.scheme}://{parts.netloc}/server"
        headers = {"Accept": "application/json", "X-Postmark-Server-Token": self.config.token or ""}
        try:
            response = self.client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"Postmark unreachable: {str(exc) or type(exc).__name__}",
                hint="check the network; the token was not checked",
            ) from exc
        if response.status_code in {401, 403, 422}:
            raise DeliveryError(
                f"Postmark refused the token ({response.status_code}: {_error_text(response)})",
                hint="set CURATOR_POSTMARK_TOKEN to the Server API token of your Postmark server",
            )
        if response.status_code != 200:
            raise DeliveryError(
                f"Postmark answered {response.status_code}: {_error_text(response)}",
                hint="try again later; see https://status.postmarkapp.com",
            )
        try:
            name = response.json().get("Name")
        except (ValueError, AttributeError):
            name = None
        return f"server {name!r}" if name else "token accepted"

    def close(self) -> None:
        if self._own:
            self.client.close()


def _pending(batch: Sequence[Outgoing], detail: str) -> Iterator[DeliveryResult]:
    for item in batch:
        yield DeliveryResult(item.recipient, "pending", detail)


def _sent_or_pending(
    batch: Sequence[Outgoing], answers: list[dict[str, Any]]
) -> Iterator[DeliveryResult]:
    for item, answer in zip(batch, answers, strict=True):
        if _code(answer) == 0:
            yield DeliveryResult(item.recipient, "sent", f"Postmark {answer.get('MessageID')}")
        else:
            yield DeliveryResult(
                item.recipient, "pending", f"Postmark {_code(answer)}: {answer.get('Message', '')}"
            )


def _code(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("ErrorCode", -1))
    except (TypeError, ValueError):
        return -1


def _answers(response: httpx.Response, expected: int) -> list[dict[str, Any]] | None:
    try:
        answers = response.json()
    except ValueError:
        return None
    if not isinstance(answers, list) or len(answers) != expected:
        return None
    if not all(isinstance(answer, dict) for answer in answers):
        return None
    return answers


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("Message", response.text[:200]))
    return response.text[:200]
