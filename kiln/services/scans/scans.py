"""Scan an image's root snapshot straight from the store (kiln/scan) and keep its findings;
answer EC2's GetImageFindings from them (docs/scan.md).

The scan reads the snapshot through ``SnapshotReader``: only the chunks holding the blocks the
checks need. A root filesystem the scanner cannot read stores the image as ``unscanned`` with
the reason, never as clean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from kiln import errors
from kiln.catalog import images as cat_images
from kiln.catalog import scans as cat
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import ImageFindingRecord, ImageRecord, ImageScanRecord, utc_now
from kiln.errors import KilnError
from kiln.scan.checks import Check, checks
from kiln.scan.policy import BUILTIN, Policy, PolicyError, builtin_policy, parse_policy
from kiln.scan.scanner import SCANNED, UNSCANNED, DiskScan, scan_disk
from kiln.services.context import Caller, Services
from kiln.services.images.access import owned_image, visible_image
from kiln.services.keys import kms
from kiln.services.validate import check_max_results, decode_token, dry_run, encode_token

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GetImageFindingsRequest:
    image_id: str
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class FindingsPage:
    scan: ImageScanRecord
    findings: tuple[ImageFindingRecord, ...]
    next_token: str | None


def scan_policy(spec: str) -> Policy:
    """``cis``, ``marketplace``, ``all`` or the path of a policy file (JSON; docs/scan.md
    #policies). :raises KilnError: InvalidParameterValue naming the file and field."""
    try:
        if spec in BUILTIN:
            return builtin_policy(spec)
        path = Path(spec)
        if not path.is_file():
            raise PolicyError(f"unknown policy {spec!r}: use {', '.join(BUILTIN)} or a policy file")
        return parse_policy(path.read_text(encoding="utf-8"), spec, checks_table())
    except PolicyError as e:
        raise KilnError(errors.InvalidParameterValue, str(e)) from e


def checks_table() -> tuple[Check, ...]:
    return checks(date.today())


def root_snapshot_id(image: ImageRecord) -> str | None:
    """The snapshot of the image's root device (else its first EBS snapshot)."""
    ebs = [bd for bd in image.block_devices if bd.ebs and bd.ebs.snapshot_id]
    for bd in ebs:
        if bd.device_name == image.root_device_name:
            return bd.ebs.snapshot_id if bd.ebs else None
    return ebs[0].ebs.snapshot_id if ebs and ebs[0].ebs else None


def scan_image(
    services: Services, caller: Caller, image_id: str, policy: Policy
) -> ImageScanRecord:
    """Scan the caller's image now and store the result as its latest scan."""
    with services.catalog.read() as tx:
        image = owned_image(tx, caller, image_id)
        if image.state not in ("available", "disabled"):
            raise KilnError(
                errors.IncorrectState,
                f"The image {image_id} is {image.state}; only an available image can be scanned.",
            )
        snap_id = root_snapshot_id(image)
        snap = cat_snapshots.get_snapshot(tx, snap_id, image.owner_id) if snap_id else None
        key = (
            kms.key_by_id(tx, services.catalog, snap.data_key_id)
            if snap is not None and snap.data_key_id
            else None
        )
        before = cat.get_image_scan(tx, image_id)
    if snap_id is None:
        result = DiskScan(UNSCANNED, (), "the image has no EBS root snapshot", None, 0, 0, 0.0)
    else:
        store = services.stores[caller.region]
        if not store.has(snap_id):
            result = DiskScan(
                UNSCANNED, (), f"the snapshot {snap_id} is not in the store", None, 0, 0, 0.0
            )
        else:
            result = scan_disk(store.reader(snap_id, key), policy)
    now = utc_now()
    first_seen = {
        (f.check_id, f.title): f.first_observed_at for f in (before.findings if before else ())
    }
    record = ImageScanRecord(
        image_id=image_id,
        region=caller.region,
        snapshot_id=snap_id,
        status=result.status,
        reason=result.reason,
        policy=policy.name,
        bytes_read=result.bytes_read,
        findings=tuple(
            ImageFindingRecord(
                f.check_id, f.severity, f.title, f.paths, first_seen.get((f.check_id, f.title), now)
            )
            for f in result.findings
        )
        + _cve_findings(before, result),
        first_scanned_at=before.first_scanned_at if before else now,
        scanned_at=now,
    )
    with services.catalog.write() as tx:
        if cat_images.get_image(tx, image_id, caller.account_id) is None:
            raise KilnError(
                errors.InvalidAMIIDNotFound, f"The image id '[{image_id}]' does not exist"
            )
        cat.put_image_scan(tx, record)
    log.info(
        "scan %s (%s): %s, %d findings, %d bytes read in %.2fs",
        image_id,
        snap_id,
        result.status,
        len(record.findings),
        result.bytes_read,
        result.seconds,
    )
    return record


def _cve_findings(
    before: ImageScanRecord | None, result: DiskScan
) -> tuple[ImageFindingRecord, ...]:
    """The last ``kiln cve scan``'s findings (docs/sbom.md), kept while the image stays
    scanned: this scan's checks do not look for CVEs."""
    if before is None or result.status != SCANNED:
        return ()
    return tuple(f for f in before.findings if f.check_id == "packages.cve")


def get_image_findings(
    services: Services, caller: Caller, req: GetImageFindingsRequest
) -> FindingsPage:
    """The findings of the image's latest scan (an image the caller may see)."""
    check_max_results(req.max_results, 1, 1000)
    after = decode_token(req.next_token, [req.image_id])
    with services.catalog.read() as tx:
        visible_image(tx, caller, req.image_id)
        dry_run(req.dry_run)
        scan = cat.get_image_scan(tx, req.image_id)
    if scan is None:
        raise KilnError(
            errors.IncorrectState,
            f"The image {req.image_id} has not been scanned (kiln scan {req.image_id}).",
        )
    if scan.status != SCANNED:
        raise KilnError(
            errors.IncorrectState, f"The image {req.image_id} is unscanned: {scan.reason}"
        )
    start = int(str(after)) if after is not None else 0
    size = req.max_results or len(scan.findings) or 1
    page = scan.findings[start : start + size]
    more = start + size < len(scan.findings)
    return FindingsPage(scan, page, encode_token(start + size, [req.image_id]) if more else None)


def image_owner(services: Services, region: str, image_id: str) -> str:
    """The owner of ``image_id`` in ``region`` (the operator's ``kiln scan`` without
    --account). :raises KilnError: InvalidAMIID.Malformed / .NotFound."""
    from kiln.services.validate import check_image_id

    check_image_id(image_id)
    with services.catalog.read() as tx:
        image = cat_images.get_image(tx, image_id, "")
    if image is None or image.region != region or image.state == "deregistered":
        raise KilnError(errors.InvalidAMIIDNotFound, f"The image id '[{image_id}]' does not exist")
    return image.owner_id
