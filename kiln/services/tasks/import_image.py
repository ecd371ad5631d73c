"""ImportSnapshot and ImportImage: a disk file (local path, bucket or http URL) into the store.

The request is checked and recorded as a task (a job row with a reserved snapshot / image id);
the job downloads if needed, inspects the disk with qemu-img, streams it into the region's
store, and only then creates the snapshot (and, for ImportImage, registers the image) in one
transaction, as EC2 shows the SnapshotId / ImageId once the task completes. Re-running a job
after a crash skips a disk whose manifest is already committed and re-reads the rest (chunks
already written are reused). A source that vanished fails the task with a ClientError message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import (
    BlockDeviceRecord,
    EbsRecord,
    ImageRecord,
    JobRecord,
    SnapshotRecord,
    utc_now,
)
from kiln.disks import inspect_disk
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.services.accounts.quotas import check_image_quota, check_snapshot_quota
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.keys import kms
from kiln.services.snapshots.access import NO_VOLUME, completed_snapshot, size_gib
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.tasks.disk_sources import (
    FORMAT_NAMES,
    DiskSource,
    disk_format,
    download,
    local_path,
    parse_source,
)
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)

ARCHITECTURES = ("x86_64", "i386", "arm64")
PLATFORMS = {"linux": "Linux", "windows": "Windows"}
DEVICE_NAMES = ("/dev/sda1",) + tuple(f"/dev/sd{c}" for c in "bcdefghijklmnop")


@dataclass(frozen=True, slots=True)
class DiskContainer:
    url: str | None = None
    bucket: str | None = None
    key: str | None = None
    format: str | None = None
    description: str | None = None
    device_name: str | None = None
    snapshot_id: str | None = None  # ImportImage only: an existing snapshot instead of a file


@dataclass(frozen=True, slots=True)
class ImportSnapshotRequest:
    disk: DiskContainer
    description: str | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ImportImageRequest:
    disks: tuple[DiskContainer, ...]
    description: str | None = None
    architecture: str | None = None
    platform: str | None = None
    boot_mode: str | None = None
    license_type: str | None = None
    hypervisor: str | None = None
    usage_operation: str | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ImportDisk:
    """One disk of an import job: a file to read into a new snapshot, or (ImportImage) an
    ``existing`` snapshot of the caller's."""

    snapshot_id: str
    existing: bool = False
    source: DiskSource | None = None
    url: str | None = None  # as the request named it (the task view shows it)
    format: str | None = None  # kiln.disks' name; None = detect
    description: str | None = None
    device_name: str | None = None  # ImportImage only


@dataclass(frozen=True, slots=True)
class ImportedDisk:
    """What reading one disk produced (kept in the job's result so a resumed job reports it)."""

    virtual_size: int
    disk_image_size: int | None = None
    format: str | None = None  # EC2's name (VMDK, RAW, ...)


@dataclass(frozen=True, slots=True)
class ImportSnapshotParams:
    """The ``import-snapshot`` job's params."""

    disk: ImportDisk
    description: str | None = None
    key_id: str | None = None
    kms_arn: str | None = None


@dataclass(frozen=True, slots=True)
class ImportImageParams:
    """The ``import-image`` job's params (the task view shows most of them)."""

    disks: tuple[ImportDisk, ...]
    image_id: str
    architecture: str
    platform: str
    license_type: str
    usage_operation: str
    hypervisor: str = "xen"
    description: str | None = None
    boot_mode: str | None = None
    key_id: str | None = None
    kms_arn: str | None = None


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Both import kinds' result: the disks read so far, then the snapshot or image made."""

    disks: dict[str, ImportedDisk] = field(default_factory=dict)
    snapshot_id: str | None = None
    image_id: str | None = None


def _key(
    services: Services, caller: Caller, encrypted: bool | None, kms_key_id: str | None
) -> tuple[str | None, str | None]:
    """The data key id and KMS key ARN an import encrypts under (None, None: unencrypted)."""
    key = kms.choose_key(services.catalog, caller.account_id, caller.region, encrypted, kms_key_id)
    return (key.key_id, kms.key_arn(key)) if key else (None, None)


def _new_disk(
    services: Services, caller: Caller, d: DiskContainer, device: str | None = None
) -> ImportDisk:
    return ImportDisk(
        snapshot_id=new_id("snap"),
        source=parse_source(services, caller.account_id, d.url, d.bucket, d.key),
        url=d.url,
        format=disk_format(d.format),
        description=d.description,
        device_name=device,
    )


def import_snapshot(services: Services, caller: Caller, req: ImportSnapshotRequest) -> str:
    """Record the import task and start it; returns the task id (``import-snap-…``)."""
    check_tag_specs(req.tag_specs, ("import-snapshot-task",))
    key_id, kms_arn = _key(services, caller, req.encrypted, req.kms_key_id)
    params = ImportSnapshotParams(
        _new_disk(services, caller, req.disk), req.description, key_id, kms_arn
    )
    with services.catalog.read() as tx:  # docs/quotas.md
        check_snapshot_quota(tx, caller.account_id, caller.region)
    dry_run(req.dry_run)
    task_id = new_id("import-snap")
    with services.catalog.write() as tx:
        cat_jobs.create_job(
            tx,
            task_id,
            "import-snapshot",
            caller.region,
            caller.account_id,
            to_json(params),
            status_message="pending",
        )
        apply_tag_specs(tx, caller, req.tag_specs, {"import-snapshot-task": [task_id]})
    services.jobs.submit(task_id)
    log.info("import snapshot task %s for %s", task_id, caller.account_id)
    return task_id


def import_image(services: Services, caller: Caller, req: ImportImageRequest) -> str:
    """Record the import task and start it; returns the task id (``import-ami-…``)."""
    check_tag_specs(req.tag_specs, ("import-image-task",))
    if not req.disks:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter DiskContainers"
        )
    if len(req.disks) > len(DEVICE_NAMES):
        raise KilnError(errors.InvalidParameterValue, "Too many disk containers.")
    arch = req.architecture or "x86_64"
    if arch not in ARCHITECTURES:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({arch}) for parameter Architecture is invalid. "
            f"Expecting one of: {', '.join(ARCHITECTURES)}.",
        )
    platform = PLATFORMS.get((req.platform or "Linux").lower())
    if platform is None:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({req.platform}) for parameter Platform is invalid. "
            "Expecting Linux or Windows.",
        )
    if req.hypervisor not in (None, "xen"):
        raise KilnError(errors.InvalidParameterValue, "The only supported Hypervisor is xen.")
    if req.license_type not in (None, "AWS", "BYOL"):
        raise KilnError(errors.InvalidParameterValue, "LicenseType must be AWS or BYOL.")
    disks: list[ImportDisk] = []
    for i, d in enumerate(req.disks):
        device = d.device_name or DEVICE_NAMES[i]
        if d.snapshot_id is not None:
            with services.catalog.read() as tx:
                snap = completed_snapshot(tx, caller, d.snapshot_id)
            if snap.owner_id != caller.account_id:
                raise KilnError(
                    errors.NotAuthorizedForResource,
                    f"Not authorized for snapshot:{snap.snapshot_id}",
                )
            disks.append(
                ImportDisk(
                    snap.snapshot_id,
                    existing=True,
                    description=d.description,
                    device_name=device,
                )
            )
        else:
            disks.append(_new_disk(services, caller, d, device))
    key_id, kms_arn = _key(services, caller, req.encrypted, req.kms_key_id)
    params = ImportImageParams(
        disks=tuple(disks),
        image_id=new_id("ami"),
        description=req.description,
        architecture=arch,
        platform=platform,
        boot_mode=req.boot_mode,
        license_type=req.license_type or "BYOL",
        usage_operation=req.usage_operation
        or ("RunInstances:0002" if platform == "Windows" else "RunInstances"),
        key_id=key_id,
        kms_arn=kms_arn,
    )
    with services.catalog.read() as tx:  # docs/quotas.md: ImportImage is an image path too
        check_image_quota(tx, caller.account_id, caller.region)
        check_snapshot_quota(tx, caller.account_id, caller.region)
    dry_run(req.dry_run)
    task_id = new_id("import-ami")
    with services.catalog.write() as tx:
        cat_jobs.create_job(
            tx,
            task_id,
            "import-image",
            caller.region,
            caller.account_id,
            to_json(params),
            status_message="pending",
        )
        apply_tag_specs(tx, caller, req.tag_specs, {"import-image-task": [task_id]})
    services.jobs.submit(task_id)
    log.info("import image task %s for %s", task_id, caller.account_id)
    return task_id


# --- the jobs --------------------------------------------------------------------------------
def _result(ctx: JobContext) -> ImportResult:
    return from_json(ImportResult, ctx.job.result or {})


def _import_disk(
    ctx: JobContext, disk: ImportDisk, key_id: str | None, lo: int, hi: int
) -> ImportedDisk:
    """One disk into the store (skipped if its manifest is already committed)."""
    services = ctx.services
    store = services.stores[ctx.job.region]
    if store.has(disk.snapshot_id):
        done = _result(ctx).disks.get(disk.snapshot_id)
        return done or ImportedDisk(store.manifest(disk.snapshot_id).virtual_size)
    assert disk.source is not None
    path = local_path(services, disk.source)
    downloaded: Path | None = None
    try:
        if path is None:
            assert disk.source.url is not None
            ctx.set_progress(lo, "downloading")
            downloaded = store.scratch / f"{ctx.job.job_id}-{disk.snapshot_id}.download"
            download(
                services.import_policy.download,
                disk.source.url,
                downloaded,
                ctx.reporter(lo, lo + (hi - lo) // 2),
                ctx.check,
            )
            path, lo = downloaded, lo + (hi - lo) // 2
        info = inspect_disk(path, disk.format)
        ctx.set_progress(lo, "converting")
        key = None
        if key_id:
            with services.catalog.read() as tx:
                key = kms.key_by_id(tx, services.catalog, key_id)
        store.import_disk(info, disk.snapshot_id, key=key, progress=ctx.reporter(lo, hi))
        return ImportedDisk(
            info.virtual_size,
            path.stat().st_size,
            FORMAT_NAMES.get(info.format, info.format.upper()),
        )
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)


def _record_disk(ctx: JobContext, snapshot_id: str, done: ImportedDisk) -> None:
    """Remember a finished disk in the job's result, so a resumed job can report it."""
    now = _result(ctx)
    result = to_json(replace(now, disks={**now.disks, snapshot_id: done}))
    with ctx.services.catalog.write() as tx:
        cat_jobs.update_job(tx, ctx.job.job_id, result=result)
    ctx.job = replace(ctx.job, result=result)


def _snapshot_row(
    ctx: JobContext,
    snapshot_id: str,
    done: ImportedDisk,
    key: tuple[str | None, str | None],
    description: str,
) -> SnapshotRecord:
    key_id, kms_arn = key
    return SnapshotRecord(
        snapshot_id=snapshot_id,
        region=ctx.job.region,
        owner_id=ctx.job.account_id,
        volume_size=size_gib(done.virtual_size),
        full_size_bytes=done.virtual_size,
        state="completed",
        start_time=ctx.job.created,
        completion_time=utc_now(),
        volume_id=NO_VOLUME,
        progress="100%",
        encrypted=key_id is not None,
        kms_key_id=kms_arn,
        data_key_id=key_id,
        description=description,
    )


def _run_import_snapshot(ctx: JobContext) -> None:
    p = from_json(ImportSnapshotParams, ctx.params)
    sid = p.disk.snapshot_id
    done = _import_disk(ctx, p.disk, p.key_id, 0, 99)
    _record_disk(ctx, sid, done)
    with ctx.services.catalog.write() as tx:
        if cat_snapshots.get_snapshot(tx, sid, ctx.job.account_id) is None:
            description = p.description or f"Created by ImportSnapshot {ctx.job.job_id}"
            row = _snapshot_row(ctx, sid, done, (p.key_id, p.kms_arn), description)
            cat_snapshots.insert_snapshot(tx, row)
        result = replace(_result(ctx), snapshot_id=sid)
        ctx.complete(tx, to_json(result), status_message="completed")


def _run_import_image(ctx: JobContext) -> None:
    p = from_json(ImportImageParams, ctx.params)
    n = len(p.disks)
    results: dict[str, ImportedDisk] = {}
    for i, disk in enumerate(p.disks):
        if disk.existing:
            continue
        done = _import_disk(ctx, disk, p.key_id, 90 * i // n, 90 * (i + 1) // n)
        _record_disk(ctx, disk.snapshot_id, done)
        results[disk.snapshot_id] = done
    ctx.set_progress(95, "preparing ami")
    with ctx.services.catalog.write() as tx:
        bdms = tuple(_image_disk(ctx, tx, p, disk, results) for disk in p.disks)
        if cat_images.get_image(tx, p.image_id, ctx.job.account_id) is None:
            cat_images.register_image(tx, _image_row(ctx, p, bdms))
        result = replace(_result(ctx), image_id=p.image_id)
        ctx.complete(tx, to_json(result), status_message="completed")


def _image_disk(
    ctx: JobContext,
    tx: Tx,
    p: ImportImageParams,
    disk: ImportDisk,
    results: Mapping[str, ImportedDisk],
) -> BlockDeviceRecord:
    """The image's block device for ``disk``, making its snapshot if this job read it."""
    sid = disk.snapshot_id
    if not disk.existing and cat_snapshots.get_snapshot(tx, sid, ctx.job.account_id) is None:
        description = f"Created by ImportImage {ctx.job.job_id}"
        row = _snapshot_row(ctx, sid, results[sid], (p.key_id, p.kms_arn), description)
        cat_snapshots.insert_snapshot(tx, row)
    snap = cat_snapshots.get_snapshot(tx, sid, ctx.job.account_id)
    if snap is None:
        raise KilnError(
            errors.InvalidSnapshotNotFound,
            f"The snapshot {sid} was deleted during the import.",
        )
    assert disk.device_name is not None
    return BlockDeviceRecord(
        disk.device_name,
        ebs=EbsRecord(
            snapshot_id=sid,
            volume_size=snap.volume_size,
            volume_type="gp2",
            delete_on_termination=True,
            encrypted=snap.encrypted,
            kms_key_id=snap.kms_key_id,
        ),
    )


def _image_row(
    ctx: JobContext, p: ImportImageParams, bdms: tuple[BlockDeviceRecord, ...]
) -> ImageRecord:
    windows = p.platform == "Windows"
    return ImageRecord(
        image_id=p.image_id,
        region=ctx.job.region,
        owner_id=ctx.job.account_id,
        name=ctx.job.job_id,
        state="available",
        architecture=p.architecture,
        root_device_type="ebs",
        virtualization_type="hvm",
        image_type="machine",
        creation_date=utc_now(),
        platform="windows" if windows else None,
        platform_details="Windows" if windows else "Linux/UNIX",
        usage_operation=p.usage_operation,
        hypervisor="xen",
        description=p.description or f"AMI created by ImportImage {ctx.job.job_id}",
        root_device_name=bdms[0].device_name,
        boot_mode=p.boot_mode,
        image_location=f"{ctx.job.account_id}/{ctx.job.job_id}",
        block_devices=bdms,
    )


def job_disks(kind: str, params: Mapping[str, object]) -> tuple[ImportDisk, ...]:
    """The disks of an import job's params (``kind`` is ``import-snapshot`` or
    ``import-image``)."""
    if kind == "import-snapshot":
        return (from_json(ImportSnapshotParams, params).disk,)
    return from_json(ImportImageParams, params).disks


def _fail_import(tx: Tx, job: JobRecord, message: str) -> None:
    """Nothing was made visible before completion: only the task records the failure."""


def _cleanup_import(services: Services, job: JobRecord) -> None:
    """Drop manifests the failed task committed but never named in the catalog (their chunks
    then go at the next gc)."""
    store = services.stores[job.region]
    with services.catalog.read() as tx:
        orphans = [
            d.snapshot_id
            for d in job_disks(job.kind, job.params)
            if not d.existing
            and cat_snapshots.get_snapshot(tx, d.snapshot_id, job.account_id) is None
        ]
    for sid in orphans:
        store.delete(sid)


JOB_KINDS = {
    "import-snapshot": JobKind(
        run=_run_import_snapshot, fail=_fail_import, cleanup=_cleanup_import
    ),
    "import-image": JobKind(run=_run_import_image, fail=_fail_import, cleanup=_cleanup_import),
}
