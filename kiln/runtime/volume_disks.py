"""A volume's disk: a qcow2 overlay over a read-only raw base, and snapshots of it.

Layout under ``DATA_DIR/regions/<region>/``::

    bases/<snap-id>.raw            the snapshot restored once (sparse), shared by its volumes
    bases/<snap-id>@<bytes>.raw    the same, extended to a larger volume size
    bases/empty-<bytes>.raw        a sparse all-zero base for volumes made without a snapshot
    bases/<base>.raw.boot/         what the base's bootloader boots, for a direct kernel boot
                                   (kiln/compute/direct_boot.py); removed with the base
    volumes/<vol-id>.qcow2         the volume: what its guest wrote since creation

A base is written once under a lock (``flock``) to a temporary name and renamed, so concurrent
CreateVolume calls restore a snapshot once and never see half a base. Volumes keep their base
by absolute path, so a base lives as long as any volume uses it.

Snapshot of a volume (like EBS changed-block tracking): the overlay's allocated clusters
(``overlay_changed_extents``) are what changed since the base. The store reads only those
ranges — grown to the parent snapshot's chunk boundaries — so the cost follows the changed
bytes. Because ``open_overlay_changes`` reads as zeros outside the changed clusters, the source
given to the store is composed here: the base's bytes around each change (one maximum chunk on
each side covers the parent's chunk boundaries) with the overlay's changed clusters on top.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kiln.disks import (
    create_overlay,
    data_extents,
    merge_extents,
    open_overlay_changes,
    overlay_changed_extents,
    raw_disk,
)
from kiln.runtime.layout import bases_dir, volume_path
from kiln.store import KeyEncryptionKey, SnapshotStore
from kiln.types import Extent

__all__ = [
    "base_of",
    "base_path",
    "create_volume_disk",
    "materialize_base",
    "remove_bases",
    "remove_volume_disk",
    "volume_path",
    "volume_source",
]

log = logging.getLogger(__name__)

COPY_BLOCK = 4 * 1024 * 1024


def base_path(
    data_dir: Path, region: str, snapshot_id: str | None, size: int, natural_size: int | None
) -> Path:
    bases = bases_dir(data_dir, region)
    if snapshot_id is None:
        return bases / f"empty-{size}.raw"
    if size == natural_size:
        return bases / f"{snapshot_id}.raw"
    return bases / f"{snapshot_id}@{size}.raw"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def materialize_base(
    store: SnapshotStore,
    base: Path,
    snapshot_id: str | None,
    size: int,
    key: KeyEncryptionKey | None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``base`` (once): the snapshot restored as sparse raw, extended to ``size`` bytes;
    or ``size`` zero bytes when there is no snapshot. Idempotent and safe to race."""
    with _locked(base):
        if base.exists():
            return base
        tmp = base.with_name(f".{base.name}.{secrets.token_hex(4)}.partial")
        try:
            if snapshot_id is None:
                with open(tmp, "wb") as f:
                    f.truncate(size)
            else:
                store.restore(snapshot_id, tmp, fmt="raw", key=key, progress=progress)
                if tmp.stat().st_size < size:
                    os.truncate(tmp, size)
            os.chmod(tmp, 0o444)
            os.replace(tmp, base)
        finally:
            tmp.unlink(missing_ok=True)
    log.info("materialized base %s", base)
    return base


def create_volume_disk(base: Path, overlay: Path) -> None:
    """The volume's qcow2 overlay over ``base`` (replacing a half-made one from a crash), and
    beside it ``<overlay>.base`` naming the base (read back by :func:`base_of`)."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    tmp = overlay.with_name(f".{overlay.name}.partial")
    tmp.unlink(missing_ok=True)
    _sidecar(overlay).write_text(str(base.resolve()) + "\n")
    create_overlay(base, tmp, base_format="raw")
    os.replace(tmp, overlay)


def _sidecar(overlay: Path) -> Path:
    return overlay.with_name(overlay.name + ".base")


def base_of(overlay: Path) -> Path:
    """The base a volume's overlay was made over."""
    return Path(_sidecar(overlay).read_text().strip())


def remove_volume_disk(overlay: Path) -> None:
    overlay.unlink(missing_ok=True)
    _sidecar(overlay).unlink(missing_ok=True)


def remove_bases(data_dir: Path, region: str, snapshot_id: str) -> None:
    """Delete every base of ``snapshot_id`` (call only when no volume uses them)."""
    bases = bases_dir(data_dir, region)
    if not bases.is_dir():
        return
    for p in bases.iterdir():
        if p.name.startswith((f"{snapshot_id}.", f"{snapshot_id}@")):
            # a base's direct-boot cache is a directory (kiln/compute/direct_boot.py)
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _grow(extents: list[Extent], margin: int, size: int) -> list[Extent]:
    grown = [
        Extent(max(0, e.offset - margin), min(size, e.end + margin) - max(0, e.offset - margin))
        for e in extents
    ]
    return merge_extents(grown)


def _intersect(a: list[Extent], b: list[Extent]) -> list[Extent]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i].offset, b[j].offset), min(a[i].end, b[j].end)
        if lo < hi:
            out.append(Extent(lo, hi - lo))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def _copy(src: int, dst: int, e: Extent, keep_zeros: bool) -> None:
    pos = e.offset
    while pos < e.end:
        n = min(COPY_BLOCK, e.end - pos)
        data = os.pread(src, n, pos)
        if len(data) < n:
            data += bytes(n - len(data))
        if keep_zeros or data.count(0) != n:
            os.pwrite(dst, data, pos)
        pos += n


@contextmanager
def volume_source(
    overlay: Path, base: Path, scratch: Path, margin: int | None
) -> Iterator[tuple[Path, list[Extent]]]:
    """A sparse raw file holding the volume's true bytes where the store will read them, and
    the changed extents. ``margin`` (the store's maximum chunk) composes only the ranges around
    the changes, for an import with ``parent=`` the base's snapshot and ``changed=``; None
    composes the whole disk (an import without a parent)."""
    changed = overlay_changed_extents(overlay)
    with open_overlay_changes(overlay, scratch) as changes:
        size = changes.size
        fill = [Extent(0, size)] if margin is None else _grow(changed, margin, size)
        base_data = data_extents(raw_disk(base))  # Kiln's own raw base: never sniffed
        out = scratch / f"kiln-volume-{secrets.token_hex(6)}.raw"
        fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            bfd = os.open(base, os.O_RDONLY)
            try:
                for e in _intersect(fill, base_data):
                    _copy(bfd, fd, e, keep_zeros=False)
            finally:
                os.close(bfd)
            for e in changed:
                _copy(
                    changes.fd, fd, Extent(e.offset, min(e.end, size) - e.offset), keep_zeros=True
                )
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            log.debug(
                "volume %s: %d changed extents, %d bytes",
                overlay,
                len(changed),
                sum(e.length for e in changed),
            )
            yield out, changed
        finally:
            out.unlink(missing_ok=True)
