"""Volume rules: CreateVolume, DescribeVolumes, DeleteVolume (CreateSnapshot of a volume is in
create_snapshot.py).

A volume is a qcow2 overlay over a read-only base restored once per snapshot and region (see
kiln/runtime/volume_disks.py). CreateVolume returns ``creating`` and a job makes the disk
(``available``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat
from kiln.catalog.records import JobRecord, SnapshotRecord, VolumeRecord, utc_now
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.runtime.volume_disks import (
    base_path,
    create_volume_disk,
    materialize_base,
    remove_bases,
    remove_volume_disk,
    volume_path,
)
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.images.block_devices import (
    IOPS_LIMITS,
    SIZE_LIMITS,
    THROUGHPUT_LIMITS,
    VOLUME_TYPES,
)
from kiln.services.keys import kms, kms_access
from kiln.services.regions.availability_zones import check_zone
from kiln.services.snapshots.access import GIB, completed_snapshot
from kiln.services.snapshots.states import VolumeState, change_volume
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run, id_prefix
from kiln.types import new_id

log = logging.getLogger(__name__)

DEFAULT_TYPE = "gp2"


@dataclass(frozen=True, slots=True)
class CreateVolumeParams:
    """The ``create-volume`` job's params: the volume, the snapshot it starts from (None: an
    empty volume) and that snapshot's data key, the volume's size and the snapshot's own."""

    volume_id: str
    snapshot_id: str | None
    snapshot_key_id: str | None
    disk_bytes: int
    natural_size: int | None


@dataclass(frozen=True, slots=True)
class CreateVolumeResult:
    path: str  # the volume's overlay


def check_volume_id(value: str) -> str:
    if id_prefix(value) != "vol":
        raise KilnError(
            errors.InvalidVolumeIDMalformed, f'Invalid id: "{value}" (expecting "vol-...")'
        )
    return value


def owned_volume(tx: Tx, caller: Caller, volume_id: str) -> VolumeRecord:
    check_volume_id(volume_id)
    found = cat.get_volumes(tx, [volume_id], caller.account_id)
    if not found or found[0].owner_id != caller.account_id or found[0].region != caller.region:
        raise KilnError(errors.InvalidVolumeNotFound, f"The volume '{volume_id}' does not exist.")
    return found[0]


@dataclass(frozen=True, slots=True)
class CreateVolumeRequest:
    availability_zone: str | None = None
    size: int | None = None
    snapshot_id: str | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    multi_attach_enabled: bool = False
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


def _check_type(req: CreateVolumeRequest, vtype: str, size: int) -> None:
    if vtype not in VOLUME_TYPES:
        raise KilnError(errors.InvalidParameterValue, f"Invalid volume type {vtype}")
    lo, hi = SIZE_LIMITS[vtype]
    if not lo <= size <= hi:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Volume of type {vtype} must be between {lo} and {hi} GiB; got {size}",
        )
    if req.iops is not None:
        if vtype not in IOPS_LIMITS:
            raise KilnError(
                errors.InvalidParameterCombination,
                f"The parameter iops is not supported for {vtype} volumes.",
            )
        ilo, ihi = IOPS_LIMITS[vtype]
        if not ilo <= req.iops <= ihi:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Iops for {vtype} must be between {ilo} and {ihi}; got {req.iops}",
            )
    elif vtype in ("io1", "io2"):
        raise KilnError(
            errors.MissingParameter, f"The parameter iops must be specified for {vtype} volumes."
        )
    if req.throughput is not None:
        if vtype != "gp3":
            raise KilnError(
                errors.InvalidParameterCombination,
                f"The parameter throughput is not supported for {vtype} volumes.",
            )
        if not THROUGHPUT_LIMITS[0] <= req.throughput <= THROUGHPUT_LIMITS[1]:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Throughput must be between {THROUGHPUT_LIMITS[0]} and "
                f"{THROUGHPUT_LIMITS[1]} MiB/s; got {req.throughput}",
            )
    if req.multi_attach_enabled and vtype not in ("io1", "io2"):
        raise KilnError(
            errors.InvalidParameterCombination,
            "Multi-Attach is supported only on io1 and io2 volumes.",
        )


def create_volume(services: Services, caller: Caller, req: CreateVolumeRequest) -> VolumeRecord:
    if req.availability_zone is None:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter AvailabilityZone"
        )
    check_zone(caller.region, req.availability_zone, errors.InvalidZoneNotFound)
    if req.size is None and req.snapshot_id is None:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter size or snapshotId"
        )
    check_tag_specs(req.tag_specs, ("volume",))
    snap: SnapshotRecord | None = None
    if req.snapshot_id is not None:
        with services.catalog.read() as tx:
            snap = completed_snapshot(tx, caller, req.snapshot_id)
    size = req.size if req.size is not None else (snap.volume_size if snap else 0)
    if snap is not None and size < snap.volume_size:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Volume of {size}GiB is smaller than snapshot '{snap.snapshot_id}', "
            f"expect size >= {snap.volume_size}GiB",
        )
    vtype = req.volume_type or DEFAULT_TYPE
    _check_type(req, vtype, size)
    key = kms.choose_key(
        services.catalog,
        caller.account_id,
        caller.region,
        req.encrypted,
        req.kms_key_id,
        source_encrypted=bool(snap and snap.encrypted),
    )
    # A volume keeps its snapshot's exact size unless a larger one is asked for, so that a
    # snapshot of it can be stored incrementally against the snapshot (same disk size).
    natural = snap.full_size_bytes if snap and snap.full_size_bytes else None
    disk_bytes = natural if natural and size == snap.volume_size else size * GIB  # type: ignore[union-attr]  # snap set when natural is
    vol = VolumeRecord(
        volume_id=new_id("vol"),
        region=caller.region,
        owner_id=caller.account_id,
        size=size,
        availability_zone=req.availability_zone,
        state="creating",
        create_time=utc_now(),
        snapshot_id=snap.snapshot_id if snap else None,
        volume_type=vtype,
        iops=req.iops if req.iops is not None else (3000 if vtype == "gp3" else None),
        throughput=req.throughput
        if req.throughput is not None
        else (125 if vtype == "gp3" else None),
        encrypted=key is not None,
        kms_key_id=kms.key_arn(key) if key else None,
        multi_attach_enabled=req.multi_attach_enabled,
    )
    job_id = new_id("create-vol")
    with services.catalog.write() as tx:
        dry_run(req.dry_run)
        cat.insert_volume(tx, vol)
        apply_tag_specs(tx, caller, req.tag_specs, {"volume": [vol.volume_id]})
        cat_jobs.create_job(
            tx,
            job_id,
            "create-volume",
            caller.region,
            caller.account_id,
            to_json(
                CreateVolumeParams(
                    vol.volume_id,
                    vol.snapshot_id,
                    snap.data_key_id if snap else None,
                    disk_bytes,
                    natural,
                )
            ),
        )
        found = cat.get_volumes(tx, [vol.volume_id], caller.account_id)
    services.jobs.submit(job_id)
    log.info("creating %s (%d GiB, from %s)", vol.volume_id, size, vol.snapshot_id)
    return found[0]


def _run_create_volume(ctx: JobContext) -> None:
    p = from_json(CreateVolumeParams, ctx.params)
    services = ctx.services
    region = ctx.job.region
    overlay = volume_path(services.data_dir, region, p.volume_id)
    if not overlay.exists():
        key = None
        if p.snapshot_key_id:
            with services.catalog.read() as tx:  # a grant for another account's key
                kms_access.require_access(
                    tx, services.catalog, ctx.job.account_id, p.snapshot_key_id
                )
                key = kms.key_by_id(tx, services.catalog, p.snapshot_key_id)
        base = base_path(services.data_dir, region, p.snapshot_id, p.disk_bytes, p.natural_size)
        if (
            p.snapshot_id is not None
            and not base.exists()
            and not services.stores[region].has(p.snapshot_id)
        ):
            raise KilnError(
                errors.InvalidSnapshotNotFound, f"The snapshot {p.snapshot_id} no longer exists."
            )
        materialize_base(
            services.stores[region],
            base,
            p.snapshot_id,
            p.disk_bytes,
            key,
            progress=ctx.reporter(0, 95),
        )
        create_volume_disk(base, overlay)
    with services.catalog.write() as tx:
        change_volume(tx, p.volume_id, VolumeState.AVAILABLE)
        ctx.complete(tx, to_json(CreateVolumeResult(str(overlay))))


def _fail_create_volume(tx: Tx, job: JobRecord, message: str) -> None:
    p = from_json(CreateVolumeParams, job.params)
    change_volume(tx, p.volume_id, VolumeState.ERROR, strict=False)


def describe_volume_records(
    services: Services, caller: Caller, volume_ids: tuple[str, ...]
) -> list[VolumeRecord]:
    """The caller's volumes in its region (all, or these ids; unknown ids are NotFound)."""
    for vid in volume_ids:
        check_volume_id(vid)
    with services.catalog.read() as tx:
        ids = cat.query_volume_ids(
            tx, caller.region, caller.account_id, tuple(dict.fromkeys(volume_ids))
        )
        missing = [v for v in volume_ids if v not in set(ids)]
        if missing:
            raise KilnError(
                errors.InvalidVolumeNotFound, f"The volume '{', '.join(missing)}' does not exist."
            )
        return cat.get_volumes(tx, ids, caller.account_id)


def delete_volume(services: Services, caller: Caller, volume_id: str, dry_run_flag: bool) -> None:
    with services.catalog.write() as tx:
        vol = owned_volume(tx, caller, volume_id)
        if vol.instance_id is not None:
            raise KilnError(
                errors.VolumeInUse, f"Volume {volume_id} is currently attached to {vol.instance_id}"
            )
        if vol.state == "creating":
            raise KilnError(
                errors.IncorrectState,
                f"The volume '{volume_id}' is 'creating'; delete it once it is available.",
            )
        dry_run(dry_run_flag)
        cat.delete_volume(tx, volume_id)
        drop_bases = (
            vol.snapshot_id is not None
            and cat.get_snapshot(tx, vol.snapshot_id, caller.account_id) is None
            and not volumes_using(tx, caller.region, vol.snapshot_id)
        )
    remove_volume_disk(volume_path(services.data_dir, caller.region, volume_id))
    if drop_bases and vol.snapshot_id:
        remove_bases(services.data_dir, caller.region, vol.snapshot_id)
    log.info("deleted %s", volume_id)


def volumes_using(tx: Tx, region: str, snapshot_id: str) -> list[str]:
    """Every account's volumes in ``region`` made from ``snapshot_id`` (their disks keep its
    base). Slow path: only deletions ask."""
    ids: list[str] = []
    for acct in cat_accounts.list_accounts(tx):
        ids += cat.query_volume_ids(tx, region, acct.account_id)
    return [v.volume_id for v in cat.get_volumes(tx, ids, "") if v.snapshot_id == snapshot_id]


def release_bases(services: Services, region: str, snapshot_id: str) -> None:
    """After DeleteSnapshot: drop the snapshot's bases unless a volume still stands on them."""
    with services.catalog.read() as tx:
        used = volumes_using(tx, region, snapshot_id)
    if not used:
        remove_bases(services.data_dir, region, snapshot_id)


JOB_KINDS = {
    "create-volume": JobKind(run=_run_create_volume, fail=_fail_create_volume),
}
