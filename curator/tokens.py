"""Signed tokens for the reply address: pure, no I/O, no clock of its own.

A reader's copy carries ``Reply-To: <local>+<token>@<domain>``. The token says which issue
and which reader (by a small id from the state, never the address) and is signed with
HMAC-SHA256 under a key kept in the state. A reply is attributed by its token alone; a
forged, altered or stale token is not attributed to anyone.

Layout, 21 bytes before encoding::

    purpose (1) | key id (2) | issue id (4) | reader id (4) | HMAC-SHA256 truncated (10)

encoded as lowercase base32 without padding: 34 characters of ``a-z2-7``. Mail servers may
fold the case of a local part, so the token is read case-insensitively; "+" never appears in
it. With "+" it takes 35 characters, so the configured local part may have at most 29 of the
64 a local part allows (config checks this).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import getaddresses
from typing import Literal

Purpose = Literal["reply", "unsubscribe"]

_PURPOSE_BYTES: dict[Purpose, bytes] = {"reply": b"r", "unsubscribe": b"u"}
_PURPOSES = {v: k for k, v in _PURPOSE_BYTES.items()}
_PAYLOAD = struct.Struct(">cHII")
_MAC_BYTES = 10
TOKEN_LENGTH = 34

# A retired key still verifies for this long, so a reply to an issue sent just before
# `curator replies rotate-key` is still matched.
KEY_GRACE = timedelta(days=60)


@dataclass(frozen=True)
class TokenKey:
    """One signing key from the state. The newest key without ``retired_at`` signs."""

    id: int
    secret: bytes = field(repr=False)
    created_at: datetime
    retired_at: datetime | None = None

    def verifies_at(self, now: datetime, grace: timedelta = KEY_GRACE) -> bool:
        return self.retired_at is None or now - self.retired_at <= grace


@dataclass(frozen=True)
class TokenClaim:
    """What a valid token says."""

    purpose: Purpose
    issue_id: int
    reader_id: int
    key_id: int


def new_secret() -> bytes:
    """A fresh 32-byte signing key."""
    return secrets.token_bytes(32)


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: TokenKey, purpose: Purpose, issue_id: int, reader_id: int) -> str:
    """The token for ``reader_id``'s copy of ``issue_id`` (0 for an unsubscribe token)."""
    payload = _PAYLOAD.pack(_PURPOSE_BYTES[purpose], key.id & 0xFFFF, issue_id, reader_id)
    raw = payload + _mac(key.secret, payload)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def read_token(token: str, keys: list[TokenKey], now: datetime) -> TokenClaim | None:
    """The claim of a valid token, or None when it is malformed, forged, altered or signed by
    a key retired longer than :data:`KEY_GRACE` ago."""
    text = token.strip().upper()
    if len(text) != TOKEN_LENGTH:
        return None
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    if base64.b32encode(raw).decode().rstrip("=") != text:
        # The last character carries bits past the token's bytes: only the spelling curator
        # wrote is the token, so an altered one is never accepted.
        return None
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    purpose_byte, key_id, issue_id, reader_id = _PAYLOAD.unpack(payload)
    purpose = _PURPOSES.get(purpose_byte)
    if purpose is None:
        return None
    for key in keys:
        if key.id & 0xFFFF != key_id or not key.verifies_at(now):
            continue
        if hmac.compare_digest(_mac(key.secret, payload), mac):
            return TokenClaim(purpose, issue_id, reader_id, key.id)
    return None


def tagged_address(address: str, token: str) -> str:
    """``local@domain`` with ``+token`` added to the local part."""
    local, domain = address.rsplit("@", 1)
    return f"{local}+{token}@{domain}"


def tokens_for(address: str, recipients: list[str]) -> list[str]:
    """The ``+tag`` parts of those ``recipients`` that are ``address`` with a tag.

    The local part and domain compare case-insensitively (servers fold them), and an address
    in a display form (``"Reflect" <reflect+x@example.org>``) counts too."""
    local, domain = address.lower().rsplit("@", 1)
    found: list[str] = []
    for _, addr in getaddresses(recipients):
        if "@" not in addr:
            continue
        their_local, their_domain = addr.lower().rsplit("@", 1)
        base, plus, tag = their_local.partition("+")
        if plus and base == local and their_domain == domain and tag not in found:
            found.append(tag)
    return found
