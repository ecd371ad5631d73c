"""ExportImage: an image's root snapshot written out as a RAW, VMDK or VHD file.

EC2 writes ``s3://<S3Bucket>/<S3Prefix><export-image-task-id>.<format>``; Kiln writes the same
name under ``DATA_DIR/buckets/<S3Bucket>/`` (see disk_sources.py and docs/jobs.md#locations). The
bucket must be the caller's; one no one has yet becomes the caller's (kiln/services/tasks/buckets.py).
The file is written under a temporary name and renamed when complete, so a reader never sees a
partial export. Only the owner may export an image (as on EC2, a shared image cannot be
exported); encrypted snapshots are decrypted with the owner's key.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import JobRecord
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.images.access import owned_image
from kiln.services.keys import kms
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.tasks.buckets import bucket_for_write, check_bucket_name
from kiln.services.tasks.disk_sources import export_path, remove_quietly
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)

EXPORT_FORMATS = {"RAW": "raw", "VMDK": "vmdk", "VHD": "vpc"}


@dataclass(frozen=True, slots=True)
class ExportImageRequest:
    image_id: str
    disk_image_format: str
    s3_bucket: str
    s3_prefix: str = ""
    description: str | None = None
    role_name: str | None = None
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ExportImageParams:
    """The ``export-image`` job's params (the task view shows several of them)."""

    image_id: str
    snapshot_id: str
    key_id: str | None
    format: str  # kiln.disks' name of the output format
    disk_image_format: str  # EC2's name (VMDK, RAW, VHD)
    s3_bucket: str
    s3_prefix: str
    description: str | None
    role_name: str | None
    path: str  # where the file is written


@dataclass(frozen=True, slots=True)
class ExportImageResult:
    path: str
    size: int


def export_image(services: Services, caller: Caller, req: ExportImageRequest) -> str:
    """Record the export task and start it; returns the task id (``export-ami-…``)."""
    fmt = EXPORT_FORMATS.get(req.disk_image_format.upper())
    if fmt is None:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({req.disk_image_format}) for parameter DiskImageFormat is "
            "invalid. Expecting VMDK, RAW or VHD.",
        )
    check_bucket_name(req.s3_bucket)
    check_tag_specs(req.tag_specs, ("export-image-task",))
    task_id = new_id("export-ami")
    out = export_path(services.data_dir, req.s3_bucket, req.s3_prefix, task_id, fmt)
    with services.catalog.read() as tx:
        image = owned_image(tx, caller, req.image_id, req.dry_run)
        if image.state != "available":
            raise KilnError(
                errors.InvalidAMIIDUnavailable,
                f"Image {image.image_id} is not available (state: {image.state}).",
            )
        root = next(
            (
                bd
                for bd in image.block_devices
                if bd.ebs
                and bd.ebs.snapshot_id
                and (
                    bd.device_name.removeprefix("/dev/")
                    == (image.root_device_name or "").removeprefix("/dev/")
                )
            ),
            None,
        )
        if image.root_device_type != "ebs" or root is None or root.ebs is None:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Image {image.image_id} has no EBS root snapshot to export.",
            )
        snap = cat_snapshots.get_snapshot(tx, root.ebs.snapshot_id or "", caller.account_id)
        if snap is None or snap.state != "completed":
            raise KilnError(
                errors.InvalidAMIIDUnavailable,
                f"The root snapshot of {image.image_id} is not available.",
            )
    dry_run(req.dry_run)
    bucket_for_write(services.catalog, services.data_dir, caller.account_id, req.s3_bucket)
    with services.catalog.write() as tx:
        params = ExportImageParams(
            image_id=image.image_id,
            snapshot_id=snap.snapshot_id,
            key_id=snap.data_key_id,
            format=fmt,
            disk_image_format=req.disk_image_format.upper(),
            s3_bucket=req.s3_bucket,
            s3_prefix=req.s3_prefix,
            description=req.description,
            role_name=req.role_name,
            path=str(out),
        )
        cat_jobs.create_job(
            tx,
            task_id,
            "export-image",
            caller.region,
            caller.account_id,
            to_json(params),
            status_message="pending",
        )
        apply_tag_specs(tx, caller, req.tag_specs, {"export-image-task": [task_id]})
    services.jobs.submit(task_id)
    log.info("export task %s: %s -> %s", task_id, image.image_id, out)
    return task_id


def _partial(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial")


def _run(ctx: JobContext) -> None:
    p = from_json(ExportImageParams, ctx.params)
    out = Path(p.path)
    if not out.exists():
        store = ctx.services.stores[ctx.job.region]
        if not store.has(p.snapshot_id):
            raise KilnError(
                errors.InvalidSnapshotNotFound,
                f"The snapshot {p.snapshot_id} of {p.image_id} no longer exists.",
            )
        key = None
        if p.key_id:
            with ctx.services.catalog.read() as tx:
                key = kms.key_by_id(tx, ctx.services.catalog, p.key_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _partial(out)
        ctx.set_progress(0, "converting")
        try:
            store.restore(p.snapshot_id, tmp, fmt=p.format, key=key, progress=ctx.reporter(0, 99))
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    with ctx.services.catalog.write() as tx:
        ctx.complete(
            tx, to_json(ExportImageResult(str(out), out.stat().st_size)), status_message="completed"
        )


def _fail(tx: Tx, job: JobRecord, message: str) -> None:
    """Only the task records the failure."""


def _cleanup(services: Services, job: JobRecord) -> None:
    remove_quietly(_partial(Path(from_json(ExportImageParams, job.params).path)))


JOB_KINDS = {"export-image": JobKind(run=_run, fail=_fail, cleanup=_cleanup)}
