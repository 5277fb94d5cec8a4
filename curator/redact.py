"""Keep secrets out of everything curator shows: server replies, errors, and the exception
chains ``--debug`` prints.

A server can echo what the client sent: an SMTP server that answers ``535`` with the base64
AUTH string it was given, or an API that quotes the token in its error message. The secret is
then on screen in a form log masking does not know (base64). :func:`redact` removes a secret
in clear, in base64 as a whole (AUTH LOGIN sends the password alone), and every base64 run
that can only have come from it, whatever its position inside a longer encoded string (AUTH
PLAIN encodes ``\\0user\\0password`` as one).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

from curator.errors import DeliveryError
from curator.models import DeliveryResult
from curator.sender import Handover, Outgoing, Sender, no_handover

MASK = "[redacted]"
# Below this, a base64 run could match innocent text by chance; the clear secret is still
# removed whatever its length.
_MIN_ENCODED = 6
SECRET_VARIABLES = (
    "CURATOR_SMTP_PASSWORD",
    "CURATOR_POSTMARK_TOKEN",
    "CURATOR_STATE_KEY",
    "CURATOR_IMAP_PASSWORD",
)


def secret_forms(secret: str) -> list[str]:
    """The texts that give ``secret`` away: itself, its base64, and the part of its base64
    that does not depend on what comes before or after it, at each of the three alignments."""
    if not secret:
        return []
    raw = secret.encode()
    forms = {secret, base64.b64encode(raw).decode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Characters that mix in bytes from before the secret: the first ceil(shift*4/3).
        start = (shift * 4 + 2) // 3
        # Characters that mix in what follows: any past the secret's last whole 6 bits.
        end = (shift + len(raw)) * 4 // 3
        core = encoded[start:end]
        if len(core) >= _MIN_ENCODED:
            forms.add(core)
    return sorted(forms, key=len, reverse=True)


# A "secret" this short is no secret, and masking it everywhere (every "e" of a message)
# would garble the text and spell the key out by where the masks fall.
_MIN_SECRET = 6


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by a mask."""
    for secret in (s for s in secrets if len(s) >= _MIN_SECRET):
        for form in secret_forms(secret):
            text = text.replace(form, MASK)
    return text


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The secrets curator reads from the environment, the ones set."""
    source = os.environ if env is None else env
    return [source[name] for name in SECRET_VARIABLES if source.get(name)]


class RedactedError(Exception):
    """Stands in, in an exception chain, for a library error whose text held a secret."""


def clean_cause(exc: BaseException, secrets: Iterable[str]) -> BaseException:
    """An exception to chain (``raise ... from``) in place of ``exc``: the same type name and
    traceback, its text redacted."""
    text = redact(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}", list(secrets))
    return RedactedError(text).with_traceback(exc.__traceback__)


class RedactingSender:
    """Wraps a sender so no secret reaches a result, an error or its chain: servers may echo
    the password (SMTP ``535`` with the AUTH string) or the token (Postmark's ``Message``)."""

    def __init__(self, inner: Sender, secrets: Sequence[str]) -> None:
        self.inner = inner
        self.secrets = [s for s in secrets if s]

    def deliver(
        self, messages: Sequence[Outgoing], handover: Handover = no_handover
    ) -> Iterator[DeliveryResult]:
        failure: DeliveryError | None = None
        try:
            for result in self.inner.deliver(messages, handover):
                detail = redact(result.detail, self.secrets)
                yield DeliveryResult(result.recipient, result.status, detail)
        except DeliveryError as exc:
            failure = self._clean(exc)
        if failure is not None:
            # Raised outside the handler, so the original (unredacted) error is not its context.
            raise failure

    def _clean(self, exc: DeliveryError) -> DeliveryError:
        secrets = self.secrets
        clean = DeliveryError(redact(exc.message, secrets), hint=redact(exc.hint, secrets))
        cause = exc.__cause__ or exc.__context__
        if cause is not None:
            clean.__cause__ = clean_cause(cause, secrets)
        clean.__suppress_context__ = True
        return clean

    def close(self) -> None:
        self.inner.close()
