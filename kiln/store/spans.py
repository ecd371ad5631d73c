"""Which byte ranges an import must read, and which entries it can take from the parent."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from kiln.store.manifest import Manifest
from kiln.types import Extent


@dataclass(frozen=True, slots=True)
class Plan:
    read: list[Extent]  # ranges to read, chunk and store (each ends on a forced boundary)
    reuse: list[int]  # indexes of parent entries kept as they are
    changed: list[Extent] | None = (
        None  # set: read ranges are composed (parent + these from source)
    )


def merge(extents: list[Extent]) -> list[Extent]:
    out: list[Extent] = []
    for e in sorted(extents, key=lambda e: e.offset):
        if e.length <= 0:
            continue
        if out and e.offset <= out[-1].end:
            last = out[-1]
            out[-1] = Extent(last.offset, max(last.end, e.end) - last.offset)
        else:
            out.append(e)
    return out


def intersect(a: list[Extent], b: list[Extent]) -> list[Extent]:
    """Intersection of two sorted, merged extent lists."""
    out: list[Extent] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i].offset, b[j].offset)
        hi = min(a[i].end, b[j].end)
        if lo < hi:
            out.append(Extent(lo, hi - lo))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def plan(
    data: list[Extent], virtual_size: int, parent: Manifest | None, changed: list[Extent] | None
) -> Plan:
    """Without ``changed`` every data range is read. With a parent and ``changed``, each changed
    range grows to the parent's chunk boundaries around it; only those regions are read and
    every parent entry outside them is reused (see docs/storage-format.md#incremental)."""
    data = merge(data)
    if parent is None or changed is None or parent.virtual_size != virtual_size:
        return Plan(read=data, reuse=[])
    offsets = parent.offsets
    lengths = parent.lengths
    grown: list[Extent] = []
    for c in merge([Extent(e.offset, min(e.end, virtual_size) - e.offset) for e in changed]):
        lo, hi = c.offset, c.end
        i = bisect.bisect_right(offsets, lo) - 1  # entry starting at or before lo
        if i >= 0 and offsets[i] + lengths[i] > lo:
            lo = offsets[i]
        j = bisect.bisect_left(offsets, hi) - 1  # last entry starting before hi
        if j >= 0 and offsets[j] + lengths[j] > hi:
            hi = offsets[j] + lengths[j]
        grown.append(Extent(lo, hi - lo))
    regions = merge(grown)
    reuse: list[int] = []
    r = 0
    for k in range(len(offsets)):
        start, end = offsets[k], offsets[k] + lengths[k]
        while r < len(regions) and regions[r].end <= start:
            r += 1
        if r < len(regions) and regions[r].offset < end:
            continue  # inside a region that is read again
        reuse.append(k)
    # Each grown region is read whole: its bytes come from the parent's chunks, overlaid with the
    # source inside the changed ranges only (the source need not hold anything else).
    return Plan(read=regions, reuse=reuse, changed=merge(changed))
