"""Scan one disk: find its partitions, open each ext4 one, pick the root filesystem (the one
with /etc), run the policy's checks. A disk with no readable root filesystem is ``unscanned``
with the reason, never clean."""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from datetime import date

from kiln.errors import KilnError
from kiln.scan.checks import checks
from kiln.scan.context import ScanContext
from kiln.scan.fs import Ext4Image, FilesystemError
from kiln.scan.partitions import Partition, PartitionTableError, read_partitions
from kiln.scan.policy import Policy
from kiln.scan.source import CountingDisk, Disk, PartitionStream, ReadCounter

log = logging.getLogger(__name__)

SCANNED = "scanned"
UNSCANNED = "unscanned"


@dataclass(frozen=True, slots=True)
class Finding:
    check_id: str
    severity: str
    title: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DiskScan:
    """What a scan of one disk found. ``reason`` says why it is ``unscanned``."""

    status: str
    findings: tuple[Finding, ...]
    reason: str | None
    partition: int | None  # the root filesystem's partition number
    bytes_read: int
    reads: int
    seconds: float


def scan_disk(disk: Disk, policy: Policy, today: date | None = None) -> DiskScan:
    """Scan ``disk``; never raises for what it cannot read (the result is ``unscanned``)."""
    # The walk makes ~10 objects per file, none in a cycle: the cyclic collector's passes over
    # them were a third of the scan's time on the debian image (bench/scan.py), so it is paused
    # for the scan (process-wide; the scan is seconds at most).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _scan(disk, policy, today)
    finally:
        if paused:
            gc.enable()


def _scan(disk: Disk, policy: Policy, today: date | None) -> DiskScan:
    started = time.monotonic()
    counter = ReadCounter()
    counted = CountingDisk(disk, counter)

    def done(
        status: str, found: tuple[Finding, ...], reason: str | None, part: int | None
    ) -> DiskScan:
        return DiskScan(
            status,
            found,
            reason,
            part,
            counter.bytes_read,
            counter.reads,
            time.monotonic() - started,
        )

    try:
        parts = read_partitions(counted)
        root, part, reasons = _root_fs(counted, parts)
        if root is None:
            return done(UNSCANNED, (), "; ".join(reasons) or "no partition", None)
        ctx = ScanContext(root)
        findings = []
        for check in policy.select(checks(today or date.today())):
            for hit in check.run(ctx):
                findings.append(
                    Finding(check.check_id, policy.severity(check), hit.title, hit.paths)
                )
    except (FilesystemError, PartitionTableError) as e:
        return done(UNSCANNED, (), str(e), None)
    except KilnError as e:  # a chunk the store cannot read back
        return done(UNSCANNED, (), f"{e.code.code}: {e.message}", None)
    return done(SCANNED, tuple(findings), None, part)


def _root_fs(disk: Disk, parts: list[Partition]) -> tuple[Ext4Image | None, int | None, list[str]]:
    reasons: list[str] = []
    for p in parts:
        try:
            fs = Ext4Image(PartitionStream(disk, p.start, p.length))
            if fs.lookup("/etc") is not None:
                return fs, p.number, reasons
            reasons.append(f"partition {p.number}: ext4 without /etc")
        except FilesystemError as e:
            reasons.append(f"partition {p.number}: {e}")
    return None, None, reasons


def open_root(disk: Disk) -> Ext4Image:
    """The disk's root filesystem (the first ext4 partition with /etc), as the scan picks it.
    :raises FilesystemError: there is none (the text gives each partition's reason)."""
    try:
        root, _, reasons = _root_fs(disk, read_partitions(disk))
    except PartitionTableError as e:
        raise FilesystemError(str(e)) from e
    if root is None:
        raise FilesystemError("; ".join(reasons) or "no partition")
    return root
