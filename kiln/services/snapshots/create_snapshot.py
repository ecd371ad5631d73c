"""CreateSnapshot of a volume: a ``pending`` snapshot, and a job that stores only what the volume
changed since its base, as a child of the volume's snapshot (``completed``).

See docs/jobs.md (the ``create-snapshot`` kind) and kiln/runtime/volume_disks.py (the changed
ranges of the overlay).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat
from kiln.catalog.records import JobRecord, SnapshotRecord, utc_now
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.runtime.volume_disks import base_of, volume_path, volume_source
from kiln.services.accounts.quotas import check_snapshot_quota
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.keys import kms, kms_access, kms_state
from kiln.services.snapshots.states import SnapshotState, change_snapshot
from kiln.services.snapshots.volumes import owned_volume
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreateSnapshotParams:
    """The ``create-snapshot`` job's params: the volume, the new snapshot, its data key, and the
    parent snapshot whose chunks it reuses (the volume's snapshot, under the same key)."""

    volume_id: str
    snapshot_id: str
    key_id: str | None
    parent: str | None


@dataclass(frozen=True, slots=True)
class CreateSnapshotResult:
    parent: str | None


def create_snapshot(
    services: Services,
    caller: Caller,
    volume_id: str,
    description: str | None,
    tag_specs: tuple[TagSpec, ...],
    dry_run_flag: bool,
) -> SnapshotRecord:
    check_tag_specs(tag_specs, ("snapshot",))
    if description is not None and len(description) > 255:
        raise KilnError(errors.InvalidParameterValue, "Description is longer than 255 characters")
    snapshot_id = new_id("snap")
    job_id = new_id("create-snap")
    with services.catalog.write() as tx:
        vol = owned_volume(tx, caller, volume_id)
        if vol.state not in ("available", "in-use"):
            raise KilnError(errors.IncorrectState, f"The volume '{volume_id}' is '{vol.state}'.")
        check_snapshot_quota(tx, caller.account_id, caller.region)  # docs/quotas.md
        dry_run(dry_run_flag)
        key_id = vol.kms_key_id.rsplit("/", 1)[-1] if vol.kms_key_id else None
        kms_state.require_usable_id(tx, services.catalog, key_id)  # KMS key states (docs/kms.md)
        parent = (
            cat.get_snapshot(tx, vol.snapshot_id, caller.account_id) if vol.snapshot_id else None
        )
        cat.insert_snapshot(
            tx,
            SnapshotRecord(
                snapshot_id=snapshot_id,
                region=caller.region,
                owner_id=caller.account_id,
                volume_size=vol.size,
                state="pending",
                start_time=utc_now(),
                volume_id=volume_id,
                progress="0%",
                encrypted=vol.encrypted,
                kms_key_id=vol.kms_key_id,
                data_key_id=key_id,
                description=description,
                parent_snapshot_id=vol.snapshot_id,
            ),
        )
        apply_tag_specs(tx, caller, tag_specs, {"snapshot": [snapshot_id]})
        cat_jobs.create_job(
            tx,
            job_id,
            "create-snapshot",
            caller.region,
            caller.account_id,
            to_json(
                CreateSnapshotParams(
                    volume_id,
                    snapshot_id,
                    key_id,
                    parent.snapshot_id if parent and parent.data_key_id == key_id else None,
                )
            ),
        )
        snap = cat.get_snapshot(tx, snapshot_id, caller.account_id)
    assert snap is not None
    services.jobs.submit(job_id)
    log.info("snapshot %s of %s (job %s)", snapshot_id, volume_id, job_id)
    return snap


def _run_create_snapshot(ctx: JobContext) -> None:
    p = from_json(CreateSnapshotParams, ctx.params)
    services = ctx.services
    region = ctx.job.region
    store = services.stores[region]
    overlay = volume_path(services.data_dir, region, p.volume_id)
    if not store.has(p.snapshot_id):
        if not overlay.exists():
            raise KilnError(
                errors.InvalidVolumeNotFound, f"The volume {p.volume_id} no longer exists."
            )
        base = base_of(overlay)
        parent = p.parent if p.parent and store.has(p.parent) else None
        if parent is not None and store.manifest(parent).virtual_size != base.stat().st_size:
            parent = None  # a larger volume than its snapshot: stored whole
        key = None
        if p.key_id:
            with services.catalog.read() as tx:  # another account's key needs a grant
                kms_access.require_access(tx, services.catalog, ctx.job.account_id, p.key_id)
                key = kms.key_by_id(tx, services.catalog, p.key_id)
        margin = store.chunker_config.max_chunk if parent else None
        ctx.set_progress(1, "reading changed blocks")
        with volume_source(overlay, base, store.scratch, margin) as (source, changed):
            store.import_disk(
                raw_disk(source),
                p.snapshot_id,
                parent=parent,
                changed=changed if parent else None,
                key=key,
                progress=ctx.reporter(5, 99),
            )
    size = store.manifest(p.snapshot_id).virtual_size
    with services.catalog.write() as tx:
        change_snapshot(
            tx,
            p.snapshot_id,
            SnapshotState.COMPLETED,
            {"progress": "100%", "completion_time": utc_now(), "full_size_bytes": size},
        )
        ctx.complete(tx, to_json(CreateSnapshotResult(p.parent)))


def _fail_create_snapshot(tx: Tx, job: JobRecord, message: str) -> None:
    p = from_json(CreateSnapshotParams, job.params)
    change_snapshot(
        tx, p.snapshot_id, SnapshotState.ERROR, {"state_message": message}, strict=False
    )


def _progress_snapshot(tx: Tx, job: JobRecord, percent: int) -> None:
    p = from_json(CreateSnapshotParams, job.params)
    cat.update_snapshot(tx, p.snapshot_id, {"progress": f"{percent}%"})


JOB_KINDS = {
    "create-snapshot": JobKind(
        run=_run_create_snapshot, fail=_fail_create_snapshot, progress=_progress_snapshot
    ),
}
