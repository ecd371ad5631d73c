"""Shared ids and small value types. Imports nothing else from kiln."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

ID_PREFIXES = (
    "ami",
    "snap",
    "vol",
    "i",
    "r",
    "key",
    "import-ami",
    "import-snap",
    "export-ami",
    "copy",
    "job",
)
_ID_RE = re.compile(r"^(?P<prefix>[a-z-]+)-(?P<hex>[0-9a-f]{8}|[0-9a-f]{17})$")


def new_id(prefix: str) -> str:
    """A new EC2-style id: ``prefix-`` + 17 lowercase hex digits."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def is_id(value: str, prefix: str) -> bool:
    m = _ID_RE.match(value)
    return bool(m and m.group("prefix") == prefix)


@dataclass(frozen=True, slots=True)
class Extent:
    """A byte range ``[offset, offset + length)`` of a disk."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length
