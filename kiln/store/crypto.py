"""Encryption at rest: AES-256-GCM chunks under a data key wrapped by the caller's KEK.

See docs/storage-format.md#encryption. One data key exists per (store, key-encryption key):
chunks under the same KEK deduplicate, chunks under different KEKs never share ids.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiln import errors
from kiln.errors import KilnError

NONCE = 12


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    """A caller's key: ``key_id`` names it in manifests, ``secret`` is 32 bytes and never stored."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise ValueError("a key-encryption key is 32 bytes")

    def __repr__(self) -> str:  # never print the secret
        return f"KeyEncryptionKey(key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True)
class DataKey:
    """The keys derived from one data key: chunk-id hashing and chunk encryption."""

    key_id: str
    id_key: bytes
    enc_key: bytes

    @classmethod
    def from_secret(cls, key_id: str, dk: bytes) -> DataKey:
        return cls(
            key_id=key_id,
            id_key=blake3.blake3(dk, derive_key_context="kiln 2026 chunk id").digest(),
            enc_key=blake3.blake3(dk, derive_key_context="kiln 2026 chunk encryption").digest(),
        )

    def seal(self, chunk_id: bytes, plaintext: bytes | memoryview) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + AESGCM(self.enc_key).encrypt(nonce, bytes(plaintext), chunk_id)

    def open(self, chunk_id: bytes, sealed: bytes | memoryview) -> bytes:
        sealed = bytes(sealed)
        try:
            return AESGCM(self.enc_key).decrypt(sealed[:NONCE], sealed[NONCE:], chunk_id)
        except InvalidTag as e:
            raise KilnError(errors.DecryptionFailed, "chunk does not decrypt with this key") from e


def wrap_data_key(kek: KeyEncryptionKey, dk: bytes) -> bytes:
    """The key object stored beside the chunks: JSON naming the KEK + the GCM-wrapped key."""
    nonce = os.urandom(NONCE)
    wrapped = AESGCM(kek.secret).encrypt(nonce, dk, kek.key_id.encode())
    return json.dumps(
        {"version": 1, "kek_id": kek.key_id, "wrapped": (nonce + wrapped).hex()}
    ).encode()


def unwrap_data_key(kek: KeyEncryptionKey, blob: bytes) -> bytes:
    doc = json.loads(blob)
    raw = bytes.fromhex(doc["wrapped"])
    try:
        return AESGCM(kek.secret).decrypt(raw[:NONCE], raw[NONCE:], kek.key_id.encode())
    except InvalidTag as e:
        raise KilnError(
            errors.DecryptionFailed, f"the key given for {kek.key_id} does not unwrap its data key"
        ) from e
