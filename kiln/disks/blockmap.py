"""``qemu-img map --output=json`` parsed into typed entries, and extent arithmetic."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.disks import qemu_img
from kiln.errors import KilnError
from kiln.types import Extent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MapEntry:
    """One run of guest bytes with the same allocation status (see qemu-img(1), ``map``)."""

    start: int
    length: int
    depth: int  # 0: allocated in the named image itself; n: in its n-th backing file
    present: bool  # allocated somewhere in the chain (False: reads as zeros, unallocated)
    zero: bool  # reads as zeros
    data: bool  # backed by data in a file
    host_offset: int | None  # where the bytes lie in the (depth's) file, when QEMU knows


def qemu_map(path: Path, fmt: str | None, *, force_share: bool = True) -> list[MapEntry]:
    """The allocation map of ``path``. ``fmt=None`` only for Kiln's own trusted overlays."""
    args = ["map", "--output=json"]
    if force_share:
        args.append("--force-share")
    if fmt is not None:
        args += ["-f", fmt]
    doc = qemu_img.run_json(
        qemu_img.QEMU_IMG,
        [*args, "--", str(path)],
        timeout=qemu_img.MAP_TIMEOUT,
        code=errors.InvalidDiskImage,
        what=f"{path.name}: cannot map {fmt or 'disk'} image",
    )
    if not isinstance(doc, list):
        raise KilnError(errors.InvalidDiskImage, f"{path.name}: qemu-img map gave no map")
    entries = []
    for item in doc:
        if not isinstance(item, dict):
            continue
        offset = item.get("offset")
        entries.append(
            MapEntry(
                start=int(item["start"]),
                length=int(item["length"]),
                depth=int(item.get("depth", 0)),
                present=bool(item.get("present", True)),
                zero=bool(item.get("zero")),
                data=bool(item.get("data")),
                host_offset=offset if isinstance(offset, int) else None,
            )
        )
    log.debug("map %s: %d entries", path, len(entries))
    return entries


def merge_extents(extents: Iterable[Extent]) -> list[Extent]:
    """Sort and merge overlapping or touching extents; drops empty ones."""
    merged: list[Extent] = []
    for ext in sorted((e for e in extents if e.length > 0), key=lambda e: e.offset):
        if merged and ext.offset <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Extent(last.offset, max(last.end, ext.end) - last.offset)
        else:
            merged.append(ext)
    return merged
