"""Secrets at rest: AES-256-GCM under a server master key kept outside the database.

SigV4 needs the secret access key itself on the server (an HMAC key cannot be checked from a
hash), so a one-way hash is impossible. Instead every secret is sealed with a 32-byte master key
stored in ``DATA_DIR/catalog.key`` (mode 0600). A stolen catalog file or database dump alone
reveals no secret; the data directory with the key file does. See docs/catalog.md#secrets.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value does not open with this master key (wrong key file or tampering)."""


def load_or_create_master_key(path: Path) -> bytes:
    """Read the master key at ``path``; create it (0600, atomically) if it does not exist."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created it first: then use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise SealError(f"master key {path} is {len(data)} bytes, expected {KEY_BYTES}")
    return data


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise SealError("master key must be 32 bytes")
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """``nonce || ciphertext+tag``; ``context`` (e.g. the access key id) is bound as AAD."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def unseal(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
        except InvalidTag as e:
            raise SealError(f"cannot open sealed secret for {context}: wrong master key") from e
