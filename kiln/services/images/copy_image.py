"""CopyImage: a new image in the caller's region whose snapshots are copied from the source's
through the stores (only chunks the destination lacks are sent), pending until they are there.

Who may copy: whoever may see the source image in its region (owner, launch permission, public);
its snapshots need no separate createVolumePermission (see docs/jobs.md#copyimage).
Encryption: Encrypted=true (+ KmsKeyId, else the caller's default key) encrypts every copied
snapshot with that key; otherwise an encrypted source snapshot stays encrypted (same key when
the caller owns it in the same region, else the caller's default key) and an unencrypted one
stays plain. A different key always re-encrypts chunk by chunk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from kiln import errors
from kiln.catalog import Conflict, Tx
from kiln.catalog import images as cat_images
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import kms as cat_kms
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog import tags as cat_tags
from kiln.catalog.records import (
    BlockDeviceRecord,
    ImageRecord,
    JobRecord,
    KmsKeyRecord,
    SnapshotRecord,
    utc_now,
)
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.services.accounts.quotas import check_image_quota, check_snapshot_quota
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.images.access import visible_image
from kiln.services.images.aliases import resolve_image_id
from kiln.services.images.images import check_name
from kiln.services.images.signing import check_signature_policy
from kiln.services.images.states import ImageState, change_image
from kiln.services.keys import kms
from kiln.services.snapshots.access import NO_VOLUME
from kiln.services.snapshots.copy_snapshot import check_region, copy_store_snapshot
from kiln.services.snapshots.states import SnapshotState, change_snapshot
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import check_image_id, dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CopyImageRequest:
    source_image_id: str
    source_region: str
    name: str
    description: str | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    copy_image_tags: bool = False
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class _Planned:
    source: SnapshotRecord
    snapshot_id: str
    key: KmsKeyRecord | None


def _key_for(
    services: Services, caller: Caller, src: SnapshotRecord, forced: KmsKeyRecord | None
) -> KmsKeyRecord | None:
    if forced is not None:
        return forced
    if not src.encrypted:  # encrypted only under EBS encryption by default
        return kms.by_default_key(services.catalog, caller.account_id, caller.region)
    if src.owner_id == caller.account_id and src.region == caller.region and src.data_key_id:
        with services.catalog.read() as tx:
            same = cat_kms.get_kms_key(tx, services.catalog.sealer, src.data_key_id)
        if same is not None and same.account_id == caller.account_id:
            return same
    return kms.ebs_default_key(services.catalog, caller.account_id, caller.region)


def copy_image(services: Services, caller: Caller, req: CopyImageRequest) -> str:
    """Register the pending copy and start its job; returns the new image id."""
    check_region(services, req.source_region)
    check_image_id(req.source_image_id)
    check_name(req.name)
    if req.description is not None and len(req.description) > 255:
        raise KilnError(
            errors.InvalidParameterValue, "AMI descriptions must be at most 255 characters long"
        )
    check_tag_specs(req.tag_specs, ("image", "snapshot"))
    source_caller = Caller(caller.account_id, req.source_region)
    with services.catalog.read() as tx:
        src = visible_image(
            tx, source_caller, resolve_image_id(tx, source_caller, req.source_image_id)
        )
        if src.state != "available":
            raise KilnError(
                errors.InvalidAMIIDUnavailable,
                f"Image {src.image_id} is not available (state: {src.state}).",
            )
        if src.root_device_type != "ebs":
            raise KilnError(
                errors.InvalidParameterValue,
                f"Image {src.image_id} is instance-store backed; only EBS-backed "
                "images can be copied.",
            )
        if src.owner_id != caller.account_id and any(
            c.product_code_type == "marketplace" for c in src.product_codes
        ):  # docs/marketplace.md: launch it and CreateImage instead, as AWS says
            raise KilnError(
                errors.InvalidRequest,
                "Images with EC2 Billing Product codes cannot be copied to another AWS account.",
            )
        check_signature_policy(tx, services, caller, src, "copy")  # docs/signing.md
        source_snaps = {
            bd.ebs.snapshot_id: cat_snapshots.get_snapshot(
                tx, bd.ebs.snapshot_id, caller.account_id
            )
            for bd in src.block_devices
            if bd.ebs is not None and bd.ebs.snapshot_id
        }
        source_tags = src.tags if req.copy_image_tags else ()
    kms.check_key_args(req.encrypted, req.kms_key_id, False)
    forced = (
        kms.choose_key(services.catalog, caller.account_id, caller.region, True, req.kms_key_id)
        if req.encrypted
        else None
    )
    planned: dict[str, _Planned] = {}
    for sid, snap in source_snaps.items():
        if snap is None or snap.state != "completed":
            raise KilnError(
                errors.InvalidAMIIDUnavailable,
                f"Image {src.image_id}: its snapshot {sid} is not available.",
            )
        planned[sid] = _Planned(snap, new_id("snap"), _key_for(services, caller, snap, forced))
    image_id = new_id("ami")
    job_id = new_id("copy-ami")
    now = utc_now()
    image = _new_image(src, caller, req, image_id, planned, now)
    with services.catalog.write() as tx:
        taken = cat_images.live_image_named(tx, caller.region, caller.account_id, req.name)
        if taken:
            raise KilnError(
                errors.InvalidAMINameDuplicate,
                f"AMI name {req.name} is already in use by AMI {taken}",
            )
        check_image_quota(tx, caller.account_id, caller.region)  # docs/quotas.md
        check_snapshot_quota(tx, caller.account_id, caller.region, len(planned))
        dry_run(req.dry_run)
        for p in planned.values():
            cat_snapshots.insert_snapshot(tx, _new_snapshot(p, caller, image_id, src.image_id, now))
        try:
            cat_images.register_image(tx, image)
        except Conflict:
            raise KilnError(
                errors.InvalidAMINameDuplicate, f"AMI name {req.name} is already in use"
            ) from None
        if source_tags:
            cat_tags.create_tags(
                tx,
                image_id,
                "image",
                caller.region,
                caller.account_id,
                [(t.key, t.value) for t in source_tags],
            )
        apply_tag_specs(
            tx,
            caller,
            req.tag_specs,
            {"image": [image_id], "snapshot": [p.snapshot_id for p in planned.values()]},
        )
        copies = tuple(
            CopiedSnapshot(
                p.source.snapshot_id,
                p.source.data_key_id,
                p.snapshot_id,
                p.key.key_id if p.key else None,
            )
            for p in planned.values()
        )
        cat_jobs.create_job(
            tx,
            job_id,
            "copy-image",
            caller.region,
            caller.account_id,
            to_json(CopyImageParams(req.source_region, src.image_id, image_id, copies)),
        )
    services.jobs.submit(job_id)
    log.info(
        "copying image %s/%s to %s/%s (job %s)",
        req.source_region,
        src.image_id,
        caller.region,
        image_id,
        job_id,
    )
    return image_id


def _new_image(
    src: ImageRecord,
    caller: Caller,
    req: CopyImageRequest,
    image_id: str,
    planned: dict[str, _Planned],
    now: str,
) -> ImageRecord:
    bdms: list[BlockDeviceRecord] = []
    for bd in src.block_devices:
        if bd.ebs is not None and bd.ebs.snapshot_id in planned:
            p = planned[bd.ebs.snapshot_id]
            bd = replace(
                bd,
                ebs=replace(
                    bd.ebs,
                    snapshot_id=p.snapshot_id,
                    encrypted=p.key is not None,
                    kms_key_id=kms.key_arn(p.key) if p.key else None,
                ),
            )
        bdms.append(bd)
    same_region = src.region == caller.region
    return replace(
        src,
        image_id=image_id,
        region=caller.region,
        owner_id=caller.account_id,
        name=req.name,
        description=req.description,
        state="pending",
        creation_date=now,
        state_reason_code=None,
        state_reason_message=None,
        is_public=False,
        image_location=f"{caller.account_id}/{req.name}",
        deprecation_time=None,
        deregistration_protection="disabled",
        last_launched_time=None,
        source_image_id=src.image_id,
        source_image_region=src.region,
        kernel_id=src.kernel_id if same_region else None,
        ramdisk_id=src.ramdisk_id if same_region else None,
        owner_alias=None,
        block_devices=tuple(bdms),
        product_codes=src.product_codes,  # a copy keeps them (docs/marketplace.md)
        tags=(),
    )


def _new_snapshot(
    p: _Planned, caller: Caller, image_id: str, source_image_id: str, now: str
) -> SnapshotRecord:
    return SnapshotRecord(
        snapshot_id=p.snapshot_id,
        region=caller.region,
        owner_id=caller.account_id,
        volume_size=p.source.volume_size,
        full_size_bytes=p.source.full_size_bytes,
        state="pending",
        start_time=now,
        volume_id=NO_VOLUME,
        progress="0%",
        encrypted=p.key is not None,
        kms_key_id=kms.key_arn(p.key) if p.key else None,
        data_key_id=p.key.key_id if p.key else None,
        description=(
            f"Copied for DestinationAmi {image_id} from SourceAmi {source_image_id} "
            f"for SourceSnapshot {p.source.snapshot_id}. Task created on {now}."
        ),
    )


@dataclass(frozen=True, slots=True)
class CopiedSnapshot:
    """One snapshot of a ``copy-image`` job: the source, the copy, and each side's data key."""

    source_snapshot_id: str
    source_key_id: str | None
    snapshot_id: str
    key_id: str | None


@dataclass(frozen=True, slots=True)
class CopyImageParams:
    """The ``copy-image`` job's params: the source image and region, the new image, and its
    snapshots."""

    source_region: str
    source_image_id: str
    image_id: str
    snapshots: tuple[CopiedSnapshot, ...]


@dataclass(frozen=True, slots=True)
class CopyImageResult:
    chunks_sent: int
    chunks_total: int


def _run(ctx: JobContext) -> None:
    p = from_json(CopyImageParams, ctx.params)
    n = max(1, len(p.snapshots))
    sent = total = 0
    for i, s in enumerate(p.snapshots):
        res = copy_store_snapshot(
            ctx,
            p.source_region,
            s.source_snapshot_id,
            s.source_key_id,
            s.snapshot_id,
            s.key_id,
            lo=100 * i // n,
            hi=100 * (i + 1) // n,
        )
        sent += res["chunks_sent"]
        total += res["chunks_total"]
    with ctx.services.catalog.write() as tx:
        for s in p.snapshots:
            change_snapshot(
                tx,
                s.snapshot_id,
                SnapshotState.COMPLETED,
                {"progress": "100%", "completion_time": utc_now()},
            )
        if _still_pending(tx, ctx.job, p):  # not deregistered while the data moved
            change_image(tx, p.image_id, ImageState.AVAILABLE)
        ctx.complete(tx, to_json(CopyImageResult(sent, total)))


def _still_pending(tx: Tx, job: JobRecord, p: CopyImageParams) -> bool:
    image = cat_images.get_image(tx, p.image_id, job.account_id)
    return image is not None and image.state == "pending"


def _fail(tx: Tx, job: JobRecord, message: str) -> None:
    p = from_json(CopyImageParams, job.params)
    code = "Client.Error" if message.startswith("ClientError") else "Server.InternalError"
    if _still_pending(tx, job, p):
        change_image(
            tx,
            p.image_id,
            ImageState.FAILED,
            {"state_reason_code": code, "state_reason_message": message},
            strict=False,
        )
    for s in p.snapshots:
        change_snapshot(
            tx, s.snapshot_id, SnapshotState.ERROR, {"state_message": message}, strict=False
        )


def _progress(tx: Tx, job: JobRecord, percent: int) -> None:
    for s in from_json(CopyImageParams, job.params).snapshots:
        cat_snapshots.update_snapshot(tx, s.snapshot_id, {"progress": f"{percent}%"})


JOB_KINDS = {"copy-image": JobKind(run=_run, fail=_fail, progress=_progress)}
