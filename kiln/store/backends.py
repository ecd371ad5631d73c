"""Every backend, by URL scheme: the one place that knows them all (restic's backend/all).

    file:///absolute/path   LocalBackend: one file per object under that directory
    memory://name           MemoryBackend: this process only (tests, the in-memory store)

A new backend is one module implementing kiln.store.backend.Backend, one entry in ``SCHEMES``,
and one line in tests/store/test_conformance.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kiln.store.backend import Backend
from kiln.store.local import LocalBackend, path_of
from kiln.store.memory import MemoryBackend


@dataclass(frozen=True, slots=True)
class OpenedBackend:
    backend: Backend
    scratch: Path  # a local directory for the store's temporary raw disks (never objects)


def _open_file(url: str) -> OpenedBackend:
    root = path_of(url)
    return OpenedBackend(LocalBackend(root), root / "scratch")


def _open_memory(url: str) -> OpenedBackend:
    name = url[len("memory://") :]
    if not name or "/" in name:
        raise ValueError(f"not a memory store URL: {url!r} (expected memory://name)")
    return OpenedBackend(MemoryBackend.named(name), Path(tempfile.gettempdir()) / "kiln-scratch")


SCHEMES: Mapping[str, Callable[[str], OpenedBackend]] = {
    "file": _open_file,
    "memory": _open_memory,
}


def open_backend(url: str) -> OpenedBackend:
    """The backend a store URL names. Raises ValueError, naming the known schemes, for a URL
    with another scheme (or none), and for a malformed URL of a known scheme."""
    if not isinstance(url, str):
        raise TypeError(
            f"a store is opened by URL (file:///abs/path or memory://name), not {url!r}"
        )
    scheme, sep, _ = url.partition("://")
    opener = SCHEMES.get(scheme) if sep else None
    if opener is None:
        raise ValueError(
            f"unknown store URL {url!r}: the schemes are " + ", ".join(f"{s}://" for s in SCHEMES)
        )
    return opener(url)
