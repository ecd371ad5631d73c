"""Which byte ranges of a disk hold data, and which an overlay changed.

Both answers come from allocation metadata, never from reading the data, so they cost the same
for a 1 MiB and a 100 GiB disk: SEEK_DATA/SEEK_HOLE on a raw file, ``qemu-img map`` otherwise.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from kiln import errors
from kiln.disks.blockmap import merge_extents, qemu_map
from kiln.disks.inspect import DiskInfo
from kiln.errors import KilnError
from kiln.types import Extent

log = logging.getLogger(__name__)


def data_extents(info: DiskInfo) -> list[Extent]:
    """Sorted, merged guest byte ranges that may hold non-zero data (holes and zeros left out).

    The ranges are a superset of the non-zero bytes: an allocated range can still contain zeros.
    """
    if info.format == "raw":
        extents = raw_data_extents(info.path, info.virtual_size)
    else:
        extents = merge_extents(
            Extent(e.start, e.length)
            for e in qemu_map(info.path, info.format)
            if e.data and not e.zero
        )
    log.debug(
        "%s: %d data extents, %d bytes", info.path, len(extents), sum(e.length for e in extents)
    )
    return extents


def raw_data_extents(path: Path, size: int) -> list[Extent]:
    """Data ranges of a raw file by SEEK_DATA/SEEK_HOLE (the whole file if the fs cannot tell)."""
    found: list[Extent] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                    return [Extent(0, size)] if size else []
                raise KilnError(
                    errors.InvalidDiskImage,
                    f"{path.name}: cannot read allocation map: {exc.strerror}",
                ) from exc
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            found.append(Extent(start, end - start))
            pos = end
    finally:
        os.close(fd)
    return merge_extents(found)


def overlay_changed_extents(overlay: Path) -> list[Extent]:
    """Guest ranges allocated in the overlay's own (top) layer: what was written since creation.

    Includes ranges the guest zeroed (allocated zero clusters): they differ from the base too.
    Granularity is the overlay's cluster size. The overlay is Kiln's own, so its backing chain is
    opened (read-only, shared) to tell the layers apart.
    """
    entries = qemu_map(Path(overlay), "qcow2")
    extents = merge_extents(
        Extent(e.start, e.length)
        for e in entries
        if e.depth == 0 and e.present and (e.data or e.zero)
    )
    log.debug(
        "%s: %d changed extents, %d bytes", overlay, len(extents), sum(e.length for e in extents)
    )
    return extents
