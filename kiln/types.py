"""Shared ids and small value types. Imports nothing else from kiln."""

from __future__ import annotations

import hashlib
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


def mac_address(instance_id: str) -> str:
    """The MAC of an instance's NIC: QEMU's locally administered prefix 52:54:00 and three bytes
    of the instance id's BLAKE2b, so the guest, DHCP and the metadata service agree on it."""
    h = hashlib.blake2b(instance_id.encode(), digest_size=3).hexdigest()
    return "52:54:00:" + ":".join(h[i : i + 2] for i in range(0, 6, 2))
