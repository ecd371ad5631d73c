"""Images in the Recycle Bin: which rule keeps a deregistered image, ListImagesInRecycleBin,
RestoreImageFromRecycleBin, and the purge of images whose retention ended
(docs/recycle-bin.md).

A kept image stays a row of ``images`` in state ``deregistered`` with a ``recycle_bin_images``
row; its snapshots are held (DeleteSnapshot answers InvalidSnapshot.InUse) and, when
DeregisterImage asked for DeleteAssociatedSnapshots, deleted at the purge, after which their
chunks are garbage for ``kiln store gc`` (docs/storage-format.md#gc).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog import recycle_bin as cat
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import BinnedImageRecord, ImageRecord, RetentionRuleRecord, ec2_time
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.states import ImageState, change_image
from kiln.services.snapshots.volumes import release_bases
from kiln.services.validate import (
    check_image_id,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BinnedImage:
    image: ImageRecord
    entry: BinnedImageRecord


@dataclass(frozen=True, slots=True)
class BinPage:
    images: tuple[BinnedImage, ...]
    next_token: str | None


def _has_any(tags: dict[str, str], wanted: Iterable[tuple[str, str | None]]) -> bool:
    return any(k in tags and (v is None or tags[k] == v) for k, v in wanted)


def matches(rule: RetentionRuleRecord, image: ImageRecord) -> bool:
    """A tag-level rule keeps images with any of its resource tags; a Region-level rule keeps
    every image without one of its exclusion tags."""
    tags = {t.key: t.value for t in image.tags}
    if rule.resource_tags:
        return _has_any(tags, rule.resource_tags)
    return not _has_any(tags, rule.exclude_tags)


def keeping_rule(tx: Tx, image: ImageRecord) -> RetentionRuleRecord | None:
    """The owner's EC2_IMAGE rule in the image's region that keeps it longest, if any."""
    rules = cat.list_rules(tx, image.region, image.owner_id, "EC2_IMAGE")
    kept = [r for r in rules if matches(r, image)]
    return max(kept, key=lambda r: r.retention_days) if kept else None


def retain_image(
    services: Services, tx: Tx, image: ImageRecord, delete_snapshots: bool
) -> BinnedImageRecord | None:
    """In DeregisterImage's transaction (the image already ``deregistered``): put the image in
    the bin if a rule keeps it; None if none does."""
    rule = keeping_rule(tx, image)
    if rule is None:
        return None
    now = services.recycle_bin_clock()
    entry = BinnedImageRecord(
        image_id=image.image_id,
        region=image.region,
        owner_id=image.owner_id,
        enter_time=ec2_time(now),
        exit_time=ec2_time(now + timedelta(days=rule.retention_days)),
        delete_snapshots=delete_snapshots,
        prior_state=image.state,
    )
    cat.bin_image(tx, entry)
    log.info(
        "%s kept in the recycle bin by rule %s until %s",
        image.image_id,
        rule.rule_id,
        entry.exit_time,
    )
    return entry


def list_images_in_recycle_bin(
    services: Services,
    caller: Caller,
    image_ids: tuple[str, ...] = (),
    max_results: int | None = None,
    next_token: str | None = None,
    dry_run_flag: bool = False,
) -> BinPage:
    for image_id in image_ids:
        check_image_id(image_id)
    check_max_results(max_results, 1, 1000)
    if image_ids and (max_results is not None or next_token is not None):
        raise KilnError(
            errors.InvalidParameterCombination,
            "The parameter ImageId cannot be used with MaxResults or NextToken.",
        )
    dry_run(dry_run_flag)
    after = decode_token(next_token, image_ids)
    with services.catalog.read() as tx:
        entries = cat.binned_images(tx, caller.region, caller.account_id, image_ids)
        entries = [e for e in entries if after is None or e.image_id > str(after)]
        size = max_results or len(entries) or 1
        page = entries[:size]
        records = {
            i.image_id: i
            for i in cat_images.get_images(tx, [e.image_id for e in page], caller.account_id)
        }
    found = tuple(BinnedImage(records[e.image_id], e) for e in page if e.image_id in records)
    more = len(entries) > size
    return BinPage(found, encode_token(page[-1].image_id, image_ids) if more else None)


def restore_image_from_recycle_bin(
    services: Services, caller: Caller, image_id: str, dry_run_flag: bool = False
) -> None:
    check_image_id(image_id)
    with services.catalog.write() as tx:
        entry = cat.binned_image(tx, image_id)
        if entry is None or (entry.region, entry.owner_id) != (caller.region, caller.account_id):
            raise KilnError(
                errors.InvalidAMIIDNotFound,
                f"The image id '[{image_id}]' does not exist in the Recycle Bin",
            )
        dry_run(dry_run_flag)
        image = cat_images.get_image(tx, image_id, caller.account_id)
        assert image is not None  # the bin row cascades with the image row
        taken = cat_images.live_image_named(tx, image.region, image.owner_id, image.name)
        if taken is not None:
            raise KilnError(
                errors.InvalidAMINameDuplicate,
                f"AMI name {image.name} is already in use by AMI {taken}; rename or deregister "
                "it before restoring this image.",
            )
        change_image(tx, image_id, ImageState(entry.prior_state), {"deregistered_at": None})
        cat.unbin_image(tx, image_id)
    log.info("%s restored from the recycle bin", image_id)


def purge_recycle_bin(services: Services, now: datetime) -> list[str]:
    """Purge every image whose retention ended by ``now`` (all regions and owners): it leaves
    the bin (and stays deregistered), and the snapshots DeregisterImage asked to delete are
    deleted unless another image uses them. Idempotent; run by ``kiln serve``'s periodic sweep
    (kiln/app.py). The ids purged."""
    with services.catalog.read() as tx:
        due = cat.expired_images(tx, ec2_time(now))
    purged: list[str] = []
    for entry in due:
        deleted: list[str] = []
        with services.catalog.write() as tx:
            if cat.binned_image(tx, entry.image_id) is None:  # restored meanwhile
                continue
            cat.unbin_image(tx, entry.image_id)
            image = cat_images.get_image(tx, entry.image_id, entry.owner_id)
            if entry.delete_snapshots and image is not None:
                deleted = _delete_held_snapshots(tx, image)
        store = services.stores.get(entry.region)
        for sid in deleted:  # after the commit: the catalog no longer names them
            if store is not None and store.has(sid):
                store.delete(sid)
            release_bases(services, entry.region, sid)
        purged.append(entry.image_id)
        log.info("purged %s from the recycle bin (snapshots deleted: %s)", entry.image_id, deleted)
    return purged


def _delete_held_snapshots(tx: Tx, image: ImageRecord) -> list[str]:
    deleted: list[str] = []
    for bd in image.block_devices:
        sid = bd.ebs.snapshot_id if bd.ebs else None
        if sid is None:
            continue
        snap = cat_snapshots.get_snapshot(tx, sid, image.owner_id)
        if snap is None or snap.owner_id != image.owner_id:
            continue
        if cat_images.images_using_snapshot(tx, sid):
            continue
        cat_snapshots.delete_snapshot(tx, sid)
        deleted.append(sid)
    return deleted
