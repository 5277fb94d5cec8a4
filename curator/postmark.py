"""Delivery through Postmark's batch API, for lists that outgrow one SMTP login.

Up to 500 messages go in one call to ``/email/batch``; Postmark answers with one result per
message, in order, which maps straight onto the per-recipient ledger. Only this module and
:mod:`curator.fetch` import httpx.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from curator.deliver import Outgoing
from curator.errors import DeliveryError
from curator.models import DeliveryResult, PostmarkConfig

BATCH_SIZE = 500
# Postmark error codes that mean "this recipient, for good": inactive, invalid address.
_FINAL_CODES = frozenset({300, 406, 422})


def _payload(item: Outgoing, stream: str) -> dict[str, Any]:
    message = item.message
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    headers = [
        {"Name": name, "Value": str(message[name])}
        for name in ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID")
        if message[name]
    ]
    return {
        "From": str(message["From"]),
        "To": item.recipient,
        "Subject": str(message["Subject"]),
        "TextBody": text.get_content() if text is not None else "",
        "HtmlBody": html.get_content() if html is not None else "",
        "Headers": headers,
        "MessageStream": stream,
    }


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

    def deliver(self, messages: Sequence[Outgoing]) -> Iterator[DeliveryResult]:
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            yield from self._send_batch(batch)

    def _send_batch(self, batch: Sequence[Outgoing]) -> Iterator[DeliveryResult]:
        body = [_payload(item, self.config.message_stream) for item in batch]
        headers = {
            "Accept": "application/json",
            "X-Postmark-Server-Token": self.config.token or "",
        }
        try:
            response = self.client.post(self.config.endpoint, json=body, headers=headers)
        except httpx.HTTPError as exc:
            # Nothing is known about this batch: keep every recipient pending for the next run.
            for item in batch:
                yield DeliveryResult(item.recipient, "pending", f"Postmark unreachable: {exc}")
            return
        if response.status_code == 401:
            raise DeliveryError(
                "Postmark refused the server token (401)",
                hint="check CURATOR_POSTMARK_TOKEN",
            )
        if response.status_code >= 500 or response.status_code == 429:
            for item in batch:
                yield DeliveryResult(
                    item.recipient, "pending", f"Postmark answered {response.status_code}"
                )
            return
        if response.status_code != 200:
            detail = _error_text(response)
            raise DeliveryError(f"Postmark refused the batch ({response.status_code}): {detail}")
        answers = response.json()
        if not isinstance(answers, list) or len(answers) != len(batch):
            for item in batch:
                yield DeliveryResult(item.recipient, "pending", "Postmark's answer was unreadable")
            return
        for item, answer in zip(batch, answers, strict=True):
            code = int(answer.get("ErrorCode", -1))
            text = str(answer.get("Message", ""))
            if code == 0:
                yield DeliveryResult(item.recipient, "sent", f"Postmark {answer.get('MessageID')}")
            elif code in _FINAL_CODES:
                yield DeliveryResult(item.recipient, "failed", f"Postmark {code}: {text}")
            else:
                yield DeliveryResult(item.recipient, "pending", f"Postmark {code}: {text}")

    def close(self) -> None:
        if self._own:
            self.client.close()


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("Message", response.text[:200]))
    except ValueError:
        return response.text[:200]
