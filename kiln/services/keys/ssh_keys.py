"""SSH key material for key pairs: generate, parse, fingerprint the way EC2 does.

Fingerprints (as EC2 shows them in ``KeyFingerprint``):

* RSA made by CreateKeyPair: SHA-1 of the private key in PKCS#8 DER, colon-separated hex.
* RSA imported by ImportKeyPair: MD5 of the public key in DER (SubjectPublicKeyInfo).
* ED25519 (made or imported): SHA-256 of the OpenSSH public key blob, base64 with padding
  (what ``ssh-keygen -l -E sha256`` prints, without the ``SHA256:`` prefix).

Private key material: RSA as PKCS#1 PEM (``BEGIN RSA PRIVATE KEY``), ED25519 in OpenSSH's format
(``BEGIN OPENSSH PRIVATE KEY``), as EC2 returns them for ``KeyFormat=pem``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kiln import errors
from kiln.errors import KilnError

KEY_TYPES = ("rsa", "ed25519")
RSA_BITS = 2048
RSA_IMPORT_BITS = (1024, 4096)  # the RSA sizes EC2 takes on import (ssh-keygen's 3072 too)
MAX_PUBLIC_KEY_BYTES = 16 * 1024

_F = serialization.PublicFormat
_E = serialization.Encoding


@dataclass(frozen=True, slots=True)
class NewKey:
    key_type: str
    public_key: str  # one OpenSSH line, without comment
    private_key: str  # PEM text
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key_type: str
    public_key: str
    fingerprint: str


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def _openssh_line(key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> str:
    return key.public_bytes(_E.OpenSSH, _F.OpenSSH).decode()


def _sha256_fingerprint(openssh_line: str) -> str:
    blob = base64.b64decode(openssh_line.split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()).decode()


def generate_key(key_type: str) -> NewKey:
    """A new key pair of ``key_type`` (``rsa`` or ``ed25519``)."""
    if key_type == "rsa":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        pkcs8 = priv.private_bytes(
            _E.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pem = priv.private_bytes(
            _E.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        public = _openssh_line(priv.public_key())
        return NewKey("rsa", public, pem, _colon_hex(hashlib.sha1(pkcs8).digest()))
    if key_type == "ed25519":
        ed = ed25519.Ed25519PrivateKey.generate()
        pem = ed.private_bytes(
            _E.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
        public = _openssh_line(ed.public_key())
        return NewKey("ed25519", public, pem, _sha256_fingerprint(public))
    raise KilnError(
        errors.InvalidParameterValue,
        f"Invalid value '{key_type}' for keyType. Valid values: rsa, ed25519",
    )


def _bad_format() -> KilnError:
    return KilnError(errors.InvalidKeyFormat, "Key is not in valid OpenSSH public key format")


def _rfc4716(text: str) -> bytes | None:
    """The key blob of an RFC 4716 ("---- BEGIN SSH2 PUBLIC KEY ----") file, or None."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines or not lines[0].startswith("---- BEGIN SSH2 PUBLIC KEY"):
        return None
    body: list[str] = []
    in_header = False
    for ln in lines[1:]:
        if ln.startswith("---- END SSH2 PUBLIC KEY"):
            return base64.b64decode("".join(body))
        if in_header or (":" in ln and not body):
            in_header = ln.endswith("\\")
            continue
        body.append(ln)
    return None


def parse_public_key(material: bytes) -> ParsedKey:
    """An imported public key: OpenSSH (``ssh-rsa AAAA… comment``), RFC 4716, or base64 DER.
    Raises ``InvalidKey.Format`` for anything else (also ECDSA/DSA keys and RSA sizes EC2
    does not take)."""
    if not material or len(material) > MAX_PUBLIC_KEY_BYTES:
        raise _bad_format()
    try:
        text = material.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _bad_format() from None
    key: object
    try:
        blob = _rfc4716(text)
        if blob is not None:
            key_type_name = blob[4 : 4 + int.from_bytes(blob[:4], "big")].decode()
            text = f"{key_type_name} {base64.b64encode(blob).decode()}"
        if text.startswith(("ssh-", "ecdsa-")):
            parts = text.split()
            if len(parts) < 2:
                raise _bad_format()
            key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
        elif text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, UnsupportedAlgorithm, binascii.Error, IndexError, UnicodeDecodeError):
        raise _bad_format() from None
    if isinstance(key, rsa.RSAPublicKey):
        if not RSA_IMPORT_BITS[0] <= key.key_size <= RSA_IMPORT_BITS[1]:
            raise KilnError(
                errors.InvalidKeyFormat,
                f"RSA keys must have 1024 to 4096 bits; this one has {key.key_size}",
            )
        der = key.public_bytes(_E.DER, _F.SubjectPublicKeyInfo)
        return ParsedKey("rsa", _openssh_line(key), _colon_hex(hashlib.md5(der).digest()))
    if isinstance(key, ed25519.Ed25519PublicKey):
        line = _openssh_line(key)
        return ParsedKey("ed25519", line, _sha256_fingerprint(line))
    raise KilnError(errors.InvalidKeyFormat, "Only RSA and ED25519 keys are supported")
