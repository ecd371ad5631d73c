"""The quarantine: chunk copies found damaged, and chunks found missing (docs/storage-format.md#quarantine).

One small write-once object per finding, so concurrent writers never lose each other's updates:

    quarantine/<chunk id, 64 hex>.<pack id, 64 hex>   the copy of the chunk in that pack is bad
    quarantine/<chunk id, 64 hex>.missing             no pack holds an intact copy of the chunk

The name is the contract: readers list ``quarantine/`` and never read the bodies, which are JSON
for people (``{"version": 1, "chunk": …, "pack": … | null, "found_by": …, "time": …}``). A name
a reader cannot parse is ignored. A store without ``quarantine/`` has an empty quarantine.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from kiln.store.backend import Backend

log = logging.getLogger(__name__)

PREFIX = "quarantine/"
MISSING = "missing"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    chunk: bytes  # chunk id
    pack: str | None  # the pack holding the bad copy; None: no intact copy anywhere (missing)

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.chunk.hex()}.{self.pack or MISSING}"


def parse(name: str) -> Entry | None:
    """The entry an object name stands for, or None if it is no quarantine entry."""
    if not name.startswith(PREFIX):
        return None
    cid, _, where = name[len(PREFIX) :].partition(".")
    if not _is_hex(cid) or not (where == MISSING or _is_hex(where)):
        return None
    return Entry(bytes.fromhex(cid), None if where == MISSING else where)


def _is_hex(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def load(backend: Backend) -> frozenset[Entry]:
    """Every entry (one listing, no reads)."""
    out = set()
    for o in backend.list(PREFIX):
        e = parse(o.name)
        if e is None:
            log.warning("ignoring %s: not a quarantine entry", o.name)
        else:
            out.add(e)
    return frozenset(out)


def record(backend: Backend, entry: Entry, found_by: str) -> bool:
    """Put ``entry`` (write-once: True if it is new)."""
    body = {
        "version": VERSION,
        "chunk": entry.chunk.hex(),
        "pack": entry.pack,
        "found_by": found_by,
        "time": time.time(),
    }
    new = backend.put(entry.name, json.dumps(body).encode())
    if new:
        log.warning(
            "quarantined chunk %s (%s), found by %s",
            entry.chunk.hex(),
            f"bad copy in pack {entry.pack}" if entry.pack else "missing",
            found_by,
        )
    return new


def remove(backend: Backend, entry: Entry) -> None:
    backend.delete(entry.name)


def bad_copies(entries: frozenset[Entry]) -> dict[bytes, frozenset[str]]:
    """chunk id -> the packs holding a bad copy of it."""
    out: dict[bytes, set[str]] = {}
    for e in entries:
        if e.pack is not None:
            out.setdefault(e.chunk, set()).add(e.pack)
    return {c: frozenset(p) for c, p in out.items()}
