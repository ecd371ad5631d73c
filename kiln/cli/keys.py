"""--key-file: a caller's key-encryption key for the store commands."""

from __future__ import annotations

from pathlib import Path

from kiln import errors
from kiln.errors import KilnError
from kiln.store import KeyEncryptionKey


def load_kek(key_file: Path | None, key_id: str | None) -> KeyEncryptionKey | None:
    """A key file holds 32 raw bytes or 64 hex digits. The key id defaults to the file's name."""
    if key_file is None:
        return None
    raw = Path(key_file).read_bytes()
    text = raw.strip()
    try:
        secret = bytes.fromhex(text.decode()) if len(text) == 64 else raw
    except (UnicodeDecodeError, ValueError):
        secret = raw
    if len(secret) != 32:
        raise KilnError(
            errors.InvalidParameterValue, f"key file {key_file} must hold 32 bytes or 64 hex digits"
        )
    return KeyEncryptionKey(key_id or Path(key_file).name, secret)
