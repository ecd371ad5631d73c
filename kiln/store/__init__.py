"""The chunk store: snapshots of disks as manifests over deduplicated, compressed chunks.

The format is a contract: docs/storage-format.md. A store is opened by URL (``open_store``,
kiln/store/backends.py); every backend passes kiln/store/conformance.py.
"""

from __future__ import annotations

from kiln.store.backend import Backend, Capabilities, ObjectInfo, ObjectMissing
from kiln.store.backends import open_backend
from kiln.store.chunker import ChunkerConfig
from kiln.store.copy import CopyResult, copy_snapshot
from kiln.store.crypto import KeyEncryptionKey
from kiln.store.importer import ImportResult
from kiln.store.local import LocalBackend, file_url
from kiln.store.maintenance import GcReport, VerifyReport, gc, verify
from kiln.store.manifest import Manifest
from kiln.store.memory import MemoryBackend
from kiln.store.reader import SnapshotReader
from kiln.store.repair import RepairReport, repair
from kiln.store.store import SnapshotStore, open_store

__all__ = [
    "Backend",
    "Capabilities",
    "ChunkerConfig",
    "CopyResult",
    "GcReport",
    "ImportResult",
    "KeyEncryptionKey",
    "LocalBackend",
    "Manifest",
    "MemoryBackend",
    "ObjectInfo",
    "ObjectMissing",
    "RepairReport",
    "SnapshotReader",
    "SnapshotStore",
    "VerifyReport",
    "copy_snapshot",
    "file_url",
    "gc",
    "open_backend",
    "open_store",
    "repair",
    "verify",
]
