"""`curator state export` and `import`: the whole state as one file that can travel.

The file is the SQLite snapshot (taken with SQLite's backup API by :meth:`Store.snapshot`)
sealed with AES-256-GCM from ``cryptography``. The key is derived from the passphrase in env
``CURATOR_STATE_KEY`` by scrypt with a fresh random salt per export, and the header (magic,
KDF parameters, salt) is authenticated too, so a wrong key and a changed byte are both refused
before anything is written. ``--plain`` writes the bare snapshot instead.

Layout of a sealed file::

    b"CURATOR-STATE\\x00" | version (1 byte) | log2(N) (1) | r (1) | p (1) | salt (16)
    | nonce (12) | ciphertext with its 16-byte tag
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from curator.errors import StateFileError
from curator.files import atomic_write
from curator.store import RunLock, Store

KEY_VARIABLE = "CURATOR_STATE_KEY"
MAGIC = b"CURATOR-STATE\x00"
SQLITE_MAGIC = b"SQLite format 3\x00"
_VERSION = 1
_HEADER = struct.Struct("!BBBB16s12s")  # version, log2 N, r, p, salt, nonce
_LOG2_N, _R, _P = 15, 8, 1  # scrypt: 32 MiB and about 0.1 s per derivation


def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if not 10 <= log2_n <= 20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise StateFileError("the state file is damaged (its key parameters are out of range)")
    return Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(passphrase.encode())


def seal(data: bytes, passphrase: str) -> bytes:
    """``data`` encrypted and authenticated under ``passphrase``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(16), os.urandom(12)
    header = MAGIC + _HEADER.pack(_VERSION, _LOG2_N, _R, _P, salt, nonce)
    sealed = AESGCM(_key(passphrase, salt, _LOG2_N, _R, _P)).encrypt(nonce, data, header)
    return header + sealed


def unseal(blob: bytes, passphrase: str | None) -> bytes:
    """The data sealed in ``blob``; :class:`StateFileError` for no key, a wrong key or damage."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if blob.startswith(SQLITE_MAGIC):
        return blob  # an export made with --plain
    size = len(MAGIC) + _HEADER.size
    if not blob.startswith(MAGIC) or len(blob) < size + 16:
        raise StateFileError("the file is not a curator state export (or it is damaged)")
    version, log2_n, r, p, salt, nonce = _HEADER.unpack(blob[len(MAGIC) : size])
    if version != _VERSION:
        raise StateFileError(f"the state file has format {version}; upgrade curator to read it")
    if not passphrase:
        raise StateFileError(f"the state file is encrypted and {KEY_VARIABLE} is not set")
    try:
        return AESGCM(_key(passphrase, salt, log2_n, r, p)).decrypt(nonce, blob[size:], blob[:size])
    except InvalidTag:
        raise StateFileError(
            f"cannot decrypt the state file: wrong {KEY_VARIABLE}, or the file is damaged"
        ) from None


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[Path]:
    """A private temporary file name in ``folder``, removed afterwards whatever happens."""
    fd, name = tempfile.mkstemp(prefix=".curator-state-", suffix=".tmp", dir=folder)
    os.close(fd)
    path = Path(name)
    path.unlink()
    try:
        yield path
    finally:
        for leftover in (path, Path(f"{name}-journal"), Path(f"{name}-wal"), Path(f"{name}-shm")):
            leftover.unlink(missing_ok=True)


# Below this a passphrase can be guessed offline from the public file, scrypt or not.
MIN_KEY_CHARS = 16


def export_state(state_path: Path, target: Path, env: Mapping[str, str], *, plain: bool) -> str:
    """Write the whole state to ``target``, sealed unless ``plain``; return the line to print."""
    passphrase = env.get(KEY_VARIABLE, "")
    if not plain and not passphrase:
        raise StateFileError(
            f"{KEY_VARIABLE} is not set: set it to encrypt the export, or pass --plain"
        )
    if not plain and len(passphrase) < MIN_KEY_CHARS:
        raise StateFileError(
            f"{KEY_VARIABLE} is too short ({len(passphrase)} characters): use a random "
            f"passphrase of {MIN_KEY_CHARS} or more, e.g. from "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if not state_path.exists():
        raise StateFileError(f"there is no state at {state_path} to export")
    target = target.absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with Store.open(state_path) as store, _scratch(target.parent) as copy:
            store.snapshot(copy)
            data = copy.read_bytes()
        atomic_write(target, data if plain else seal(data, passphrase))
    except OSError as exc:
        raise StateFileError(f"cannot write {target}: {exc.strerror or exc}") from exc
    how = "unencrypted (--plain)" if plain else f"encrypted with {KEY_VARIABLE}"
    return f"state exported to {target}, {how}"


def import_state(source: Path, state_path: Path, env: Mapping[str, str]) -> str:
    """Replace the state with the one exported to ``source``; nothing is overwritten unless the
    whole file decrypts and checks out."""
    try:
        blob = source.read_bytes()
    except OSError as exc:
        raise StateFileError(f"cannot read {source}: {exc.strerror or exc}") from exc
    data = unseal(blob, env.get(KEY_VARIABLE) or None)
    if not data.startswith(SQLITE_MAGIC):
        raise StateFileError("the file is not a curator state export (or it is damaged)")
    # The real file, as the run lock sees it: a --state link is followed, never replaced.
    state_path = state_path.resolve()
    try:
        state_path.parent.mkdir(parents=True, exist_ok=True)

        def checked(restored: Path) -> None:
            Store.check_snapshot(restored)
            # The old state's side files belong to the old state: read with the new one they
            # would corrupt it. No run holds them (the lock is ours).
            for side in ("-wal", "-shm", "-journal"):
                Path(f"{state_path}{side}").unlink(missing_ok=True)

        with RunLock(state_path):
            atomic_write(state_path, data, mode=0o600, before_replace=checked)
    except OSError as exc:
        raise StateFileError(f"cannot write {state_path}: {exc.strerror or exc}") from exc
    return f"state imported from {source} into {state_path}"
