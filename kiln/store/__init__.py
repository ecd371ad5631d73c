"""The chunk store: snapshots of disks as manifests over deduplicated, compressed chunks.

The format is a contract: docs/storage-format.md.
"""

from __future__ import annotations

from pathlib import Path

from kiln.store.backend import Backend, Capabilities, ObjectInfo, ObjectMissing
from kiln.store.chunker import ChunkerConfig
from kiln.store.copy import CopyResult, copy_snapshot
from kiln.store.crypto import KeyEncryptionKey
from kiln.store.importer import ImportResult
from kiln.store.local import LocalBackend
from kiln.store.maintenance import GcReport, VerifyReport, gc, verify
from kiln.store.manifest import Manifest
from kiln.store.repair import RepairReport, repair
from kiln.store.store import SnapshotStore, _attach_maintenance

_attach_maintenance()


def open_store(root: Path, chunker: ChunkerConfig | None = None) -> SnapshotStore:
    """The local-directory store at ``root`` (created if missing)."""
    root = Path(root)
    return SnapshotStore(LocalBackend(root), scratch=root / "scratch", chunker=chunker)


__all__ = [
    "Backend", "Capabilities", "ChunkerConfig", "CopyResult", "GcReport", "ImportResult",
    "KeyEncryptionKey", "LocalBackend", "Manifest", "ObjectInfo", "ObjectMissing", "SnapshotStore",
    "RepairReport", "VerifyReport", "copy_snapshot", "gc", "open_store", "repair", "verify",
]
