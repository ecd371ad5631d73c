"""Images, their block device mappings, product codes and launch permissions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.accounts import aliases_of
from kiln.catalog.records import (
    BlockDeviceRecord,
    EbsRecord,
    ImageRecord,
    LaunchPermissionRecord,
    ProductCodeRecord,
)
from kiln.catalog.tags import tags_for
from kiln.catalog.wildcard import table as _table

_IMAGE_COLUMNS = [c.name for c in models.Image.__table__.columns]
_EBS_FIELDS = [f.name for f in fields(EbsRecord)]
MUTABLE_FIELDS = frozenset(_IMAGE_COLUMNS) - {"image_id", "region", "owner_id", "is_public"}


def register_image(tx: Session, image: ImageRecord) -> None:
    """Insert ``image`` with its block devices and product codes (tags are separate)."""
    register_images(tx, [image])


def register_images(tx: Session, images: Sequence[ImageRecord]) -> None:
    """Insert many new images at once (executemany; for bulk publishing and benchmarks)."""
    if not images:
        return
    tx.execute(
        insert(_table(models.Image)), [{c: getattr(i, c) for c in _IMAGE_COLUMNS} for i in images]
    )
    bdms = [
        {
            "image_id": i.image_id,
            "position": pos,
            "device_name": bd.device_name,
            "virtual_name": bd.virtual_name,
            "no_device": bd.no_device,
            "is_ebs": bd.ebs is not None,
            **{f: getattr(bd.ebs, f) if bd.ebs else None for f in _EBS_FIELDS},
        }
        for i in images
        for pos, bd in enumerate(i.block_devices)
    ]
    if bdms:
        tx.execute(insert(_table(models.BlockDeviceMapping)), bdms)
    codes = [
        {
            "image_id": i.image_id,
            "product_code_id": pc.product_code_id,
            "product_code_type": pc.product_code_type,
        }
        for i in images
        for pc in i.product_codes
    ]
    if codes:
        tx.execute(insert(_table(models.ProductCode)), codes)


def live_image_named(tx: Session, region: str, owner_id: str, name: str) -> str | None:
    """The id of the owner's not-deregistered image called ``name`` in ``region``."""
    return tx.scalars(
        select(models.Image.image_id).where(
            models.Image.region == region,
            models.Image.owner_id == owner_id,
            models.Image.name == name,
            models.Image.state != "deregistered",
        )
    ).first()


def get_image(tx: Session, image_id: str, viewer: str) -> ImageRecord | None:
    found = get_images(tx, [image_id], viewer)
    return found[0] if found else None


def get_images(tx: Session, image_ids: Sequence[str], viewer: str) -> list[ImageRecord]:
    """Full records for ``image_ids`` in that order (missing ids are skipped), with the tags
    ``viewer`` put on them. No visibility check: callers decide who may see what."""
    if not image_ids:
        return []
    rows = (
        tx.execute(select(models.Image.__table__).where(models.Image.image_id.in_(image_ids)))
        .mappings()
        .all()
    )
    by_id = {r["image_id"]: r for r in rows}
    ids = [i for i in image_ids if i in by_id]
    bdms: dict[str, list[BlockDeviceRecord]] = {i: [] for i in ids}
    bdm = models.BlockDeviceMapping.__table__
    for b in tx.execute(
        select(bdm).where(bdm.c.image_id.in_(ids)).order_by(bdm.c.image_id, bdm.c.position)
    ).mappings():
        ebs = EbsRecord(**{f: b[f] for f in _EBS_FIELDS}) if b["is_ebs"] else None
        bdms[b["image_id"]].append(
            BlockDeviceRecord(b["device_name"], b["virtual_name"], b["no_device"], ebs)
        )
    codes: dict[str, list[ProductCodeRecord]] = {i: [] for i in ids}
    pc = models.ProductCode.__table__
    for p in tx.execute(select(pc).where(pc.c.image_id.in_(ids))).mappings():
        codes[p["image_id"]].append(ProductCodeRecord(p["product_code_id"], p["product_code_type"]))
    tags = tags_for(tx, ids, viewer)
    aliases = aliases_of(tx, {by_id[i]["owner_id"] for i in ids})
    return [
        ImageRecord(
            **dict(by_id[i]),
            owner_alias=aliases.get(by_id[i]["owner_id"]),
            block_devices=tuple(bdms[i]),
            product_codes=tuple(codes[i]),
            tags=tuple(tags.get(i, ())),
        )
        for i in ids
    ]


@dataclass(frozen=True, slots=True)
class BootImages:
    """A machine image's KernelId and RamdiskId (paravirtual images)."""

    kernel_id: str | None
    ramdisk_id: str | None


def boot_images(tx: Session, image_ids: Iterable[str]) -> dict[str, BootImages]:
    """The kernel and ramdisk of those of ``image_ids`` that have a kernel; no access check."""
    t = models.Image.__table__
    rows = tx.execute(
        select(t.c.image_id, t.c.kernel_id, t.c.ramdisk_id).where(
            t.c.image_id.in_(set(image_ids)), t.c.kernel_id.is_not(None)
        )
    )
    return {r.image_id: BootImages(r.kernel_id, r.ramdisk_id) for r in rows}


def update_image(tx: Session, image_id: str, changes: Mapping[str, object]) -> None:
    bad = set(changes) - MUTABLE_FIELDS
    if bad:
        raise ValueError(f"not mutable image fields: {sorted(bad)}")
    tx.execute(update(models.Image).where(models.Image.image_id == image_id).values(**changes))


def add_product_codes(tx: Session, image_id: str, codes: Iterable[ProductCodeRecord]) -> None:
    have = set(
        tx.scalars(
            select(models.ProductCode.product_code_id).where(
                models.ProductCode.image_id == image_id
            )
        )
    )
    for pc in codes:
        if pc.product_code_id not in have:
            tx.add(
                models.ProductCode(
                    image_id=image_id,
                    product_code_id=pc.product_code_id,
                    product_code_type=pc.product_code_type,
                )
            )
            have.add(pc.product_code_id)
    tx.flush()


def launch_permissions(tx: Session, image_id: str) -> list[LaunchPermissionRecord]:
    rows = tx.scalars(
        select(models.LaunchPermission)
        .where(models.LaunchPermission.image_id == image_id)
        .order_by(models.LaunchPermission.id)
    )
    return [
        LaunchPermissionRecord(
            r.user_id, r.group_name, r.organization_arn, r.organizational_unit_arn
        )
        for r in rows
    ]


def _perm_match(image_id: str, p: LaunchPermissionRecord):  # type: ignore[no-untyped-def]
    lp = models.LaunchPermission
    return (lp.image_id == image_id) & (
        (lp.user_id == p.user_id)
        if p.user_id
        else (lp.group_name == p.group)
        if p.group
        else (lp.organization_arn == p.organization_arn)
        if p.organization_arn
        else (lp.organizational_unit_arn == p.organizational_unit_arn)
    )


def add_launch_permissions(
    tx: Session, image_id: str, perms: Iterable[LaunchPermissionRecord]
) -> None:
    existing = set(launch_permissions(tx, image_id))
    for p in perms:
        if p not in existing:
            tx.add(
                models.LaunchPermission(
                    image_id=image_id,
                    user_id=p.user_id,
                    group_name=p.group,
                    organization_arn=p.organization_arn,
                    organizational_unit_arn=p.organizational_unit_arn,
                )
            )
            existing.add(p)
    tx.flush()
    _refresh_public(tx, image_id)


def remove_launch_permissions(
    tx: Session, image_id: str, perms: Iterable[LaunchPermissionRecord]
) -> None:
    for p in perms:
        tx.execute(delete(models.LaunchPermission).where(_perm_match(image_id, p)))
    _refresh_public(tx, image_id)


def reset_launch_permissions(tx: Session, image_id: str) -> None:
    tx.execute(delete(models.LaunchPermission).where(models.LaunchPermission.image_id == image_id))
    _refresh_public(tx, image_id)


def _refresh_public(tx: Session, image_id: str) -> None:
    public = (
        tx.scalar(
            select(func.count())
            .select_from(models.LaunchPermission)
            .where(
                models.LaunchPermission.image_id == image_id,
                models.LaunchPermission.group_name == "all",
            )
        )
        or 0
    )
    tx.execute(
        update(models.Image).where(models.Image.image_id == image_id).values(is_public=public > 0)
    )


def has_launch_permission(tx: Session, image_id: str, account_id: str) -> bool:
    """True if ``account_id`` is granted explicitly or the image is public (not ownership)."""
    lp = models.LaunchPermission
    n = tx.scalar(
        select(func.count())
        .select_from(lp)
        .where(lp.image_id == image_id, or_(lp.user_id == account_id, lp.group_name == "all"))
    )
    return bool(n)


def images_using_snapshot(tx: Session, snapshot_id: str) -> list[str]:
    """Ids of images whose block devices reference ``snapshot_id``: those not deregistered and
    those the Recycle Bin keeps (docs/recycle-bin.md: a binned image holds its snapshots)."""
    bdm = models.BlockDeviceMapping
    binned = select(models.RecycleBinImage.image_id)
    return list(
        tx.scalars(
            select(bdm.image_id)
            .join(models.Image, models.Image.image_id == bdm.image_id)
            .where(
                bdm.snapshot_id == snapshot_id,
                or_(models.Image.state != "deregistered", models.Image.image_id.in_(binned)),
            )
            .distinct()
        )
    )


def image_state(tx: Session, image_id: str) -> str | None:
    """The image's state, None if there is no such row (the rules' state table reads it)."""
    return tx.execute(
        select(models.Image.state).where(models.Image.image_id == image_id)
    ).scalar_one_or_none()
