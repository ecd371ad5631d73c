"""CreateImage: a new image from an instance's volumes, storing only what changed.

The request checks the instance (running or stopped, EBS root), records a ``pending`` image and
one ``pending`` snapshot per attached volume in one transaction, and queues a ``create-image``
job. The job, holding the instance's lifecycle lock:

1. unless ``NoReboot`` (or the VM is not running), shuts the guest down cleanly (ACPI);
2. stores each volume as a child of the snapshot it was made from: the overlay's allocated
   clusters are the changed ranges (``overlay_changed_extents`` / ``open_overlay_changes`` via
   kiln/services/volume_disks.py), so the work grows with the bytes written, not the disk size;
3. boots the instance again if it shut it down, and marks snapshots ``completed`` and the image
   ``available``.

Before step 1 shuts a running guest down, the job records ``restart_instance`` in its result.
A run resumed after a crash (``kill -9`` of the server) therefore boots the instance again even
if its VM is gone by then, exactly as the uninterrupted job would; with ``NoReboot``, or an
instance that was stopped, nothing is recorded and its state is left as it is.

Ancestry: the image records ``SourceInstanceId`` and, as ``SourceImageId``, the image the
instance was launched from; each snapshot records its parent (docs/instances.md#createimage).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from kiln import errors
from kiln.catalog import Conflict, Tx
from kiln.catalog import images as cat_images
from kiln.catalog import instances as cat_instances
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import (
    BlockDeviceRecord,
    EbsRecord,
    ImageRecord,
    JobRecord,
    SnapshotRecord,
    VolumeRecord,
    utc_now,
)
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.runtime.volume_disks import base_of, volume_path, volume_source
from kiln.services.accounts.quotas import check_image_quota, check_snapshot_quota
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.images.images import check_name
from kiln.services.images.states import ImageState, change_image
from kiln.services.instances.access import owned_instances, views
from kiln.services.instances.lifecycle import RESTART_INSTANCE, hidden_before, internal_error
from kiln.services.instances.states import InstanceState, change_instance
from kiln.services.instances.vm_launch import (
    prepare_disks,
    runtime_of,
    start_vm,
    stop_vm,
    vm_running,
)
from kiln.services.keys import kms, kms_access
from kiln.services.snapshots.states import SnapshotState, change_snapshot
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 60.0
JOB_KIND = "create-image"


@dataclass(frozen=True, slots=True)
class CreateImageRequest:
    instance_id: str | None
    name: str | None
    description: str | None = None
    no_reboot: bool = False
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


def create_image(services: Services, caller: Caller, req: CreateImageRequest) -> str:
    runtime_of(services)
    if not req.instance_id:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter InstanceId"
        )
    if not req.name:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter Name")
    check_name(req.name)
    if req.description is not None and len(req.description) > 255:
        raise KilnError(
            errors.InvalidParameterValue, "AMI descriptions must be at most 255 characters long"
        )
    check_tag_specs(req.tag_specs, ("image", "snapshot"))
    image_id = new_id("ami")
    job_id = new_id("create-ami")
    try:
        with services.catalog.write() as tx:
            view = views(tx, owned_instances(tx, caller, [req.instance_id], hidden_before()))[0]
            inst = view.instance
            if inst.root_device_type != "ebs":
                raise KilnError(
                    errors.UnsupportedOperation,
                    f"The instance '{inst.instance_id}' has an instance-store root; "
                    "CreateImage needs an EBS-backed instance.",
                )
            if inst.state not in (InstanceState.RUNNING, InstanceState.STOPPED):
                raise KilnError(
                    errors.IncorrectInstanceState,
                    f"The instance '{inst.instance_id}' is '{inst.state}'; CreateImage "
                    "needs a running or stopped instance.",
                )
            taken = cat_images.live_image_named(tx, caller.region, caller.account_id, req.name)
            if taken:
                raise KilnError(
                    errors.InvalidAMINameDuplicate,
                    f"AMI name {req.name} is already in use by AMI {taken}",
                )
            check_image_quota(tx, caller.account_id, caller.region)  # docs/quotas.md
            check_snapshot_quota(tx, caller.account_id, caller.region, len(view.volumes))
            dry_run(req.dry_run)
            snaps = _record(tx, caller, inst.instance_id, image_id, view.volumes)
            source = cat_images.get_image(tx, inst.image_id, caller.account_id)
            cat_images.register_image(
                tx,
                ImageRecord(
                    image_id=image_id,
                    region=caller.region,
                    owner_id=caller.account_id,
                    name=req.name,
                    state=ImageState.PENDING.value,
                    architecture=inst.architecture,
                    root_device_type="ebs",
                    virtualization_type="hvm",
                    image_type="machine",
                    creation_date=utc_now(),
                    description=req.description,
                    root_device_name=inst.root_device_name,
                    boot_mode="legacy-bios",
                    image_location=f"{caller.account_id}/{req.name}",
                    source_instance_id=inst.instance_id,
                    source_image_id=inst.image_id if source is not None else None,
                    source_image_region=caller.region if source is not None else None,
                    block_devices=tuple(
                        BlockDeviceRecord(
                            v.device or "",
                            ebs=EbsRecord(
                                snapshot_id=s.snapshot_id,
                                volume_size=v.size,
                                volume_type=v.volume_type,
                                iops=v.iops,
                                throughput=v.throughput,
                                delete_on_termination=True,
                                encrypted=v.encrypted,
                                kms_key_id=v.kms_key_id,
                            ),
                        )
                        for v, s in zip(view.volumes, snaps, strict=True)
                    ),
                    product_codes=inst.product_codes,  # inherited (docs/marketplace.md)
                ),
            )
            apply_tag_specs(
                tx,
                caller,
                req.tag_specs,
                {"image": [image_id], "snapshot": [s.snapshot_id for s in snaps]},
            )
            params = CreateImageParams(
                inst.instance_id,
                image_id,
                req.no_reboot,
                tuple(
                    ImagedVolume(v.volume_id, s.snapshot_id, v.snapshot_id, s.data_key_id)
                    for v, s in zip(view.volumes, snaps, strict=True)
                ),
            )
            cat_jobs.create_job(
                tx, job_id, JOB_KIND, caller.region, caller.account_id, to_json(params)
            )
    except Conflict:
        raise KilnError(
            errors.InvalidAMINameDuplicate, f"AMI name {req.name} is already in use"
        ) from None
    services.jobs.submit(job_id)
    log.info(
        "CreateImage %s from %s (job %s, no_reboot=%s)",
        image_id,
        req.instance_id,
        job_id,
        req.no_reboot,
    )
    return image_id


def _record(
    tx: Tx, caller: Caller, instance_id: str, image_id: str, volumes: tuple[VolumeRecord, ...]
) -> list[SnapshotRecord]:
    out = []
    for v in volumes:
        parent = cat_snapshots.get_snapshot(tx, v.snapshot_id, "") if v.snapshot_id else None
        snap = SnapshotRecord(
            snapshot_id=new_id("snap"),
            region=caller.region,
            owner_id=caller.account_id,
            volume_size=v.size,
            state="pending",
            start_time=utc_now(),
            volume_id=v.volume_id,
            encrypted=v.encrypted,
            kms_key_id=v.kms_key_id,
            data_key_id=parent.data_key_id if parent else None,
            description=f"Created by CreateImage({instance_id}) for {image_id}",
            parent_snapshot_id=v.snapshot_id,
        )
        cat_snapshots.insert_snapshot(tx, snap)
        out.append(snap)
    return out


@dataclass(frozen=True, slots=True)
class ImagedVolume:
    """One volume of a ``create-image`` job: the volume, its new snapshot, the snapshot the
    volume was made from (whose chunks the new one reuses) and the data key."""

    volume_id: str
    snapshot_id: str
    parent: str | None
    key_id: str | None


@dataclass(frozen=True, slots=True)
class CreateImageParams:
    """The ``create-image`` job's params."""

    instance_id: str
    image_id: str
    no_reboot: bool
    volumes: tuple[ImagedVolume, ...]


@dataclass(frozen=True, slots=True)
class CreateImageResult:
    """The job's result. ``restart_instance`` (``RESTART_INSTANCE``) is written before the
    guest is shut down, so that a resumed run boots it again (instances/lifecycle.py)."""

    image_id: str | None = None
    restart_instance: str | None = None


def _store_volume(ctx: JobContext, volume: ImagedVolume, lo: int, hi: int) -> None:
    services, region = ctx.services, ctx.job.region
    store = services.stores[region]
    sid = volume.snapshot_id
    if store.has(sid):
        return
    overlay = volume_path(services.data_dir, region, volume.volume_id)
    if not overlay.exists():
        raise KilnError(
            errors.InvalidVolumeNotFound, f"The volume {volume.volume_id} no longer exists."
        )
    base = base_of(overlay)
    parent = volume.parent if volume.parent and store.has(volume.parent) else None
    if parent is not None and store.manifest(parent).virtual_size != base.stat().st_size:
        parent = None  # a volume grown beyond its snapshot: stored whole
    key = None
    if volume.key_id:
        with services.catalog.read() as tx:  # another account's key needs a grant (docs/kms.md)
            kms_access.require_access(tx, services.catalog, ctx.job.account_id, volume.key_id)
            key = kms.key_by_id(tx, services.catalog, volume.key_id)
    margin = store.chunker_config.max_chunk if parent else None
    with volume_source(overlay, base, store.scratch, margin) as (source, changed):
        store.import_disk(
            raw_disk(source),
            sid,
            parent=parent,
            changed=changed if parent else None,
            key=key,
            progress=ctx.reporter(lo, hi),
        )


def _run(ctx: JobContext) -> None:
    p = from_json(CreateImageParams, ctx.params)
    services = ctx.services
    runtime = runtime_of(services)
    iid = p.instance_id
    volumes = p.volumes
    with runtime.locked(iid):
        with services.catalog.read() as tx:
            inst = cat_instances.get_instance(tx, iid, "")
            vols = cat_instances.volumes_of_instances(tx, [iid]).get(iid, [])
        if inst is None:
            raise KilnError(errors.InvalidInstanceIDNotFound, f"The instance {iid} is gone.")
        pending = [v for v in volumes if not services.stores[ctx.job.region].has(v.snapshot_id)]
        # A resumed job knows from its result whether an earlier run shut the guest down: the
        # VM may be gone now (a kill -9 while it was down), but the job must boot it again.
        reboot = _restart_recorded(ctx, iid)
        if (
            not reboot
            and pending
            and not p.no_reboot
            and inst.state == InstanceState.RUNNING
            and vm_running(services, inst)
        ):
            _record_restart(ctx, iid)  # durable before the guest goes down
            reboot = True
        if reboot and pending and vm_running(services, inst):
            ctx.set_progress(1, "shutting the guest down")
            stop_vm(services, inst, SHUTDOWN_TIMEOUT_S, force=False)
        try:
            step = 90 // max(1, len(volumes))
            for n, v in enumerate(volumes):
                _store_volume(ctx, v, 5 + n * step, 5 + (n + 1) * step)
        finally:
            if reboot:
                _restart(services, inst.instance_id, vols)
    with services.catalog.write() as tx:
        for v in volumes:
            size = services.stores[ctx.job.region].manifest(v.snapshot_id).virtual_size
            change_snapshot(
                tx,
                v.snapshot_id,
                SnapshotState.COMPLETED,
                {"progress": "100%", "completion_time": utc_now(), "full_size_bytes": size},
            )
        change_image(tx, p.image_id, ImageState.AVAILABLE)
        ctx.complete(tx, to_json(CreateImageResult(p.image_id, iid if reboot else None)))
    log.info("CreateImage %s from %s: available", p.image_id, iid)


def _restart_recorded(ctx: JobContext, instance_id: str) -> bool:
    return from_json(CreateImageResult, ctx.job.result or {}).restart_instance == instance_id


def _record_restart(ctx: JobContext, instance_id: str) -> None:
    """Write into the job's result that this job shuts ``instance_id`` down and boots it again.
    Until the job is final, reconcile and the watcher leave the instance ``running`` without a
    VM (instance_lifecycle.held_down), and a resumed run boots it (docs/instances.md)."""
    result = {**(ctx.job.result or {}), RESTART_INSTANCE: instance_id}
    with ctx.services.catalog.write() as tx:
        cat_jobs.update_job(tx, ctx.job.job_id, result=result)
    ctx.job = replace(ctx.job, result=result)


def _restart(services: Services, instance_id: str, vols: list[VolumeRecord]) -> None:
    """Boot the instance again after its snapshot, unless it is no longer ``running`` (stopped
    or terminated meanwhile) or its VM already runs (a resumed job that had booted it)."""
    with services.catalog.read() as tx:
        inst = cat_instances.get_instance(tx, instance_id, "")
    if inst is None or inst.state != InstanceState.RUNNING or vm_running(services, inst):
        return
    try:
        start_vm(services, inst, prepare_disks(services, inst, vols))
    except KilnError as e:
        log.warning("%s: restart after CreateImage failed: %s", instance_id, e.message)
        reason = internal_error(f"restart after CreateImage failed: {e.message}")
        with services.catalog.write() as tx:
            change_instance(
                tx,
                instance_id,
                [InstanceState.RUNNING],
                InstanceState.STOPPED,
                {"state_reason_code": reason[0], "state_reason_message": reason[1]},
            )


def _fail(tx: Tx, job: JobRecord, message: str) -> None:
    p = from_json(CreateImageParams, job.params)
    change_image(
        tx,
        p.image_id,
        ImageState.FAILED,
        {
            "state_reason_code": "Client.CreateImageFailed"
            if message.startswith("ClientError")
            else "Server.InternalError",
            "state_reason_message": message,
        },
        strict=False,
    )
    for v in p.volumes:
        change_snapshot(
            tx, v.snapshot_id, SnapshotState.ERROR, {"state_message": message}, strict=False
        )


def _progress(tx: Tx, job: JobRecord, percent: int) -> None:
    for v in from_json(CreateImageParams, job.params).volumes:
        cat_snapshots.update_snapshot(tx, v.snapshot_id, {"progress": f"{percent}%"})


JOB_KINDS = {JOB_KIND: JobKind(run=_run, fail=_fail, progress=_progress)}
