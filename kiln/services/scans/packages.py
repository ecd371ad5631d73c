"""Images' package inventories, their CycloneDX SBOMs and differences, and offline CVE matching
against the imported Debian security-tracker feed (docs/sbom.md).

The inventory is read from the image's root snapshot through the store, as ``kiln scan`` reads
it (kiln/scan/packages.py). CVE findings are also kept in the image's stored scan, under the
check ``packages.cve``, when the image has a scan to keep them in.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from kiln import errors
from kiln.catalog import cves as cat_cves
from kiln.catalog import scans as cat_scans
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.cves import CveFeedRecord
from kiln.catalog.records import ImageFindingRecord, utc_now
from kiln.errors import KilnError
from kiln.scan.cve import CveFinding, FeedError, match, parse_feed
from kiln.scan.fs import FilesystemError
from kiln.scan.packages import Inventory, read_inventory
from kiln.scan.sbom import ImageRef, PackageDiff, diff_inventories, sbom_json
from kiln.scan.scanner import SCANNED, open_root
from kiln.services.context import Caller, Services
from kiln.services.images.access import owned_image
from kiln.services.keys import kms
from kiln.services.scans.scans import root_snapshot_id

log = logging.getLogger(__name__)

CVE_CHECK = "packages.cve"


@dataclass(frozen=True, slots=True)
class ImageInventory:
    image: ImageRef
    inventory: Inventory


@dataclass(frozen=True, slots=True)
class CveScan:
    image: ImageRef
    feed: CveFeedRecord
    findings: tuple[CveFinding, ...]
    stored: bool  # kept in the image's stored scan (it has one)


def image_inventory(services: Services, caller: Caller, image_id: str) -> ImageInventory:
    """The packages installed in the caller's image (its root snapshot's filesystem).
    :raises KilnError: InvalidAMIID.*, AuthFailure, IncorrectState (not available, no EBS
    root, a filesystem that cannot be read)."""
    with services.catalog.read() as tx:
        image = owned_image(tx, caller, image_id)
        if image.state not in ("available", "disabled"):
            raise KilnError(
                errors.IncorrectState,
                f"The image {image_id} is {image.state}; only an available image can be read.",
            )
        snap_id = root_snapshot_id(image)
        snap = cat_snapshots.get_snapshot(tx, snap_id, image.owner_id) if snap_id else None
        key = (
            kms.key_by_id(tx, services.catalog, snap.data_key_id)
            if snap is not None and snap.data_key_id
            else None
        )
    store = services.stores[caller.region]
    if snap_id is None or not store.has(snap_id):
        raise KilnError(
            errors.IncorrectState, f"The image {image_id} has no EBS root snapshot in the store."
        )
    try:
        inventory = read_inventory(open_root(store.reader(snap_id, key)))
    except FilesystemError as e:
        raise KilnError(
            errors.IncorrectState, f"The image {image_id}'s root filesystem cannot be read: {e}"
        ) from e
    ref = ImageRef(image_id, image.name or image_id, caller.region, snap_id)
    return ImageInventory(ref, inventory)


def image_sbom(services: Services, caller: Caller, image_id: str) -> str:
    """The image's CycloneDX JSON (kiln/scan/sbom.py)."""
    found = image_inventory(services, caller, image_id)
    return sbom_json(found.image, found.inventory)


def diff_image_packages(
    services: Services, caller: Caller, image_a: str, image_b: str
) -> PackageDiff:
    """The packages added, removed, upgraded and downgraded from ``image_a`` to ``image_b``."""
    a = image_inventory(services, caller, image_a)
    b = image_inventory(services, caller, image_b)
    return diff_inventories(a.inventory, b.inventory)


def import_cve_feed(services: Services, path: Path) -> CveFeedRecord:
    """Parse the security-tracker JSON at ``path`` and make it the imported feed. A feed that
    does not parse is refused whole (InvalidParameterValue naming the field); the feed imported
    before stays."""
    data = path.read_bytes()
    try:
        feed = parse_feed(data, str(path))
    except FeedError as e:
        raise KilnError(errors.InvalidParameterValue, str(e)) from e
    record = CveFeedRecord(
        path.name, hashlib.sha256(data).hexdigest(), len(feed.packages), feed.cve_count, utc_now()
    )
    with services.catalog.write() as tx:
        cat_cves.replace_cve_feed(tx, record, feed.packages)
    log.info("cve feed %s: %d packages, %d CVEs", path, record.packages, record.cves)
    return record


def scan_image_cves(services: Services, caller: Caller, image_id: str) -> CveScan:
    """Match the image's packages against the imported feed. The findings replace the
    ``packages.cve`` findings of the image's stored scan when it has a ``scanned`` one.
    :raises KilnError: IncorrectState when no feed is imported."""
    with services.catalog.read() as tx:
        feed = cat_cves.get_cve_feed(tx)
    if feed is None:
        raise KilnError(
            errors.IncorrectState, "No CVE feed is imported (kiln cve import FILE first)."
        )
    found = image_inventory(services, caller, image_id)
    sources = {p.source for p in found.inventory.packages}
    with services.catalog.write() as tx:
        findings = match(found.inventory, cat_cves.advisories_for(tx, sources))
        scan = cat_scans.get_image_scan(tx, image_id)
        stored = scan is not None and scan.status == SCANNED
        if scan is not None and stored:
            now = utc_now()
            seen = {f.title: f.first_observed_at for f in scan.findings if f.check_id == CVE_CHECK}
            kept = tuple(f for f in scan.findings if f.check_id != CVE_CHECK)
            new = tuple(
                ImageFindingRecord(
                    CVE_CHECK, f.severity, f.title, (f.path,), seen.get(f.title, now)
                )
                for f in findings
            )
            cat_scans.put_image_scan(tx, replace(scan, findings=kept + new))
    log.info("cve scan %s: %d findings (feed %s)", image_id, len(findings), feed.sha256[:12])
    return CveScan(found.image, feed, findings, stored)
