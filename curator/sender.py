"""The seam every delivery backend plugs into: one message (:class:`Outgoing`), the
:class:`Sender` protocol and the ``handover`` callback. No backend lives here, so
:mod:`curator.deliver` (outbox, SMTP) and :mod:`curator.postmark` (an HTTP API) both import
this module and never each other; the wiring code picks one (``make_sender`` in
:mod:`curator.sending`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from curator.models import DeliveryResult

# Called with the recipients of a message right before the service could accept it.
Handover = Callable[[Sequence[str]], None]


def no_handover(recipients: Sequence[str]) -> None:
    """A ``handover`` for deliveries nobody records (test copies, dry runs)."""


@dataclass(frozen=True)
class Outgoing:
    """One message for one recipient."""

    recipient: str
    message: EmailMessage
    name: str  # a stable file-name stem: the same issue and recipient always gives the same one


class Sender(Protocol):
    def deliver(
        self, messages: Sequence[Outgoing], handover: Handover = ...
    ) -> Iterator[DeliveryResult]: ...

    def close(self) -> None: ...
