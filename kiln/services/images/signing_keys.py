"""Ed25519 keys for image signatures (docs/signing.md#keys): reading the files an owner and an
operator hand in, the key id every listing shows, and ``kiln image keygen``.

Private keys: PEM PKCS#8 (``openssl genpkey -algorithm ed25519``) or OpenSSH
(``ssh-keygen -t ed25519``), unencrypted. Public keys: PEM SubjectPublicKeyInfo
(``openssl pkey -pubout``) or one OpenSSH line (``ssh-ed25519 AAAA…``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiln import errors
from kiln.errors import KilnError

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(*RAW)


def key_id(public: bytes) -> str:
    """``ed25519:`` and the first 16 bytes of the SHA-256 of the raw 32-byte public key, in hex."""
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:32]


def public_from_raw(public: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public)


def load_private_key(data: bytes, name: str) -> Ed25519PrivateKey:
    """:raises KilnError: InvalidParameterValue unless ``data`` is an unencrypted ed25519
    private key (``name`` is the file, for the message)."""
    key: object = None
    for load in (serialization.load_pem_private_key, serialization.load_ssh_private_key):
        try:
            key = load(data, None)
            break
        except TypeError as e:  # encrypted: a password is needed
            raise KilnError(
                errors.InvalidParameterValue,
                f"{name}: the private key is encrypted; give an unencrypted ed25519 key",
            ) from e
        except (ValueError, UnsupportedAlgorithm):
            continue
    if not isinstance(key, Ed25519PrivateKey):
        raise KilnError(
            errors.InvalidParameterValue,
            f"{name} is not an ed25519 private key (PEM PKCS#8 or OpenSSH)"
            + (f"; it is a {type(key).__name__.removesuffix('PrivateKey')} key" if key else ""),
        )
    return key


def load_public_key(data: bytes, name: str) -> Ed25519PublicKey:
    """:raises KilnError: InvalidParameterValue unless ``data`` is an ed25519 public key."""
    key: object = None
    for load in (serialization.load_pem_public_key, serialization.load_ssh_public_key):
        try:
            key = load(data.strip())
            break
        except (ValueError, UnsupportedAlgorithm):
            continue
    if not isinstance(key, Ed25519PublicKey):
        raise KilnError(
            errors.InvalidParameterValue,
            f"{name} is not an ed25519 public key (PEM or an OpenSSH ssh-ed25519 line)",
        )
    return key


@dataclass(frozen=True, slots=True)
class KeyPairFiles:
    """``kiln image keygen``'s output: the private key (PEM PKCS#8) and its public key (PEM)."""

    private_pem: bytes
    public_pem: bytes
    key_id: str


def generate_key() -> KeyPairFiles:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    return KeyPairFiles(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        key_id(raw_public(public)),
    )
