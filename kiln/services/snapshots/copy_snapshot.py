"""CopySnapshot: a new snapshot in the caller's region, its chunks copied from the source
region's store by a ``copy-snapshot`` job (only those the destination lacks)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat
from kiln.catalog.records import JobRecord, SnapshotRecord, utc_now
from kiln.errors import KilnError
from kiln.runtime.jobs import from_json, to_json
from kiln.services.accounts.quotas import check_snapshot_quota
from kiln.services.context import Caller, JobContext, JobKind, Services
from kiln.services.keys import kms, kms_access, kms_state
from kiln.services.snapshots.access import (
    NO_VOLUME,
    check_snapshot_id,
    completed_snapshot,
)
from kiln.services.snapshots.states import SnapshotState, change_snapshot
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import (
    dry_run,
)
from kiln.store import copy_snapshot as store_copy_snapshot
from kiln.types import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CopySnapshotParams:
    """The ``copy-snapshot`` job's params: where the source is, the new snapshot, and the data
    keys on each side (None: unencrypted). Its result is copy_store_snapshot's counts."""

    source_region: str
    source_snapshot_id: str
    source_key_id: str | None
    snapshot_id: str
    key_id: str | None


@dataclass(frozen=True, slots=True)
class CopySnapshotRequest:
    source_region: str
    source_snapshot_id: str
    description: str | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    destination_region: str | None = None
    tag_specs: tuple[TagSpec, ...] = ()
    dry_run: bool = False


def check_region(services: Services, region: str, what: str = "SourceRegion") -> str:
    if region not in services.regions:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({region}) for parameter {what} is invalid. "
            f"Known regions: {', '.join(services.regions)}.",
        )
    return region


def copy_snapshot(services: Services, caller: Caller, req: CopySnapshotRequest) -> str:
    """A pending copy of a snapshot the caller may see, in the caller's region."""
    check_region(services, req.source_region)
    if req.destination_region is not None and req.destination_region != caller.region:
        raise KilnError(
            errors.InvalidParameterValue,
            f"DestinationRegion {req.destination_region} must be the region the "
            f"request is sent to ({caller.region}).",
        )
    check_snapshot_id(req.source_snapshot_id)
    check_tag_specs(req.tag_specs, ("snapshot",))
    if req.description is not None and len(req.description) > 255:
        raise KilnError(errors.InvalidParameterValue, "Description is longer than 255 characters")
    with services.catalog.read() as tx:
        src = completed_snapshot(
            tx, Caller(caller.account_id, req.source_region), req.source_snapshot_id
        )
        kms_state.require_usable_id(tx, services.catalog, src.data_key_id)  # the source's key too
    key = kms.choose_key(
        services.catalog,
        caller.account_id,
        caller.region,
        req.encrypted,
        req.kms_key_id,
        source_encrypted=src.encrypted,
    )
    snapshot_id = new_id("snap")
    job_id = new_id("copy-snap")
    with services.catalog.write() as tx:
        check_snapshot_quota(tx, caller.account_id, caller.region)  # docs/quotas.md
        dry_run(req.dry_run)
        cat.insert_snapshot(
            tx,
            SnapshotRecord(
                snapshot_id=snapshot_id,
                region=caller.region,
                owner_id=caller.account_id,
                volume_size=src.volume_size,
                full_size_bytes=src.full_size_bytes,
                state="pending",
                start_time=utc_now(),
                volume_id=NO_VOLUME,
                progress="0%",
                encrypted=key is not None,
                kms_key_id=kms.key_arn(key) if key else None,
                data_key_id=key.key_id if key else None,
                description=req.description
                if req.description is not None
                else f"[Copied {src.snapshot_id} from {req.source_region}]",
                parent_snapshot_id=src.snapshot_id,  # its lineage (docs/marketplace.md)
            ),
        )
        apply_tag_specs(tx, caller, req.tag_specs, {"snapshot": [snapshot_id]})
        cat_jobs.create_job(
            tx,
            job_id,
            "copy-snapshot",
            caller.region,
            caller.account_id,
            to_json(
                CopySnapshotParams(
                    req.source_region,
                    src.snapshot_id,
                    src.data_key_id,
                    snapshot_id,
                    key.key_id if key else None,
                )
            ),
        )
    services.jobs.submit(job_id)
    log.info(
        "copying %s/%s to %s/%s (job %s)",
        req.source_region,
        src.snapshot_id,
        caller.region,
        snapshot_id,
        job_id,
    )
    return snapshot_id


def copy_store_snapshot(
    ctx: JobContext,
    source_region: str,
    source_snapshot_id: str,
    source_key_id: str | None,
    snapshot_id: str,
    key_id: str | None,
    lo: int = 0,
    hi: int = 100,
) -> dict[str, int]:
    """Copy one snapshot between region stores (skipped if already done). Only the chunks the
    destination lacks are sent; a different key re-encrypts."""
    services = ctx.services
    src_store = services.stores[source_region]
    dst_store = services.stores[ctx.job.region]
    if dst_store.has(snapshot_id):
        return {"chunks_sent": 0, "bytes_sent": 0, "chunks_total": 0}
    if not src_store.has(source_snapshot_id):
        raise KilnError(
            errors.InvalidSnapshotNotFound,
            f"The source snapshot {source_snapshot_id} no longer exists.",
        )
    with services.catalog.read() as tx:
        # the caller needs a grant on another account's source key (docs/kms.md)
        kms_access.require_access(tx, services.catalog, ctx.job.account_id, source_key_id)
        src_key = kms.key_by_id(tx, services.catalog, source_key_id) if source_key_id else None
        dst_key = kms.key_by_id(tx, services.catalog, key_id) if key_id else None
    res = store_copy_snapshot(
        src_store,
        dst_store,
        source_snapshot_id,
        snapshot_id,
        src_key=src_key,
        dst_key=dst_key,
        progress=ctx.reporter(lo, hi),
    )
    return {
        "chunks_sent": res.chunks_sent,
        "bytes_sent": res.bytes_sent,
        "chunks_total": res.chunks_total,
    }


def _run_copy(ctx: JobContext) -> None:
    p = from_json(CopySnapshotParams, ctx.params)
    sent = copy_store_snapshot(
        ctx, p.source_region, p.source_snapshot_id, p.source_key_id, p.snapshot_id, p.key_id
    )
    with ctx.services.catalog.write() as tx:
        change_snapshot(
            tx,
            p.snapshot_id,
            SnapshotState.COMPLETED,
            {"progress": "100%", "completion_time": utc_now()},
        )
        ctx.complete(tx, sent)


def _fail_copy(tx: Tx, job: JobRecord, message: str) -> None:
    p = from_json(CopySnapshotParams, job.params)
    change_snapshot(
        tx, p.snapshot_id, SnapshotState.ERROR, {"state_message": message}, strict=False
    )


def _progress_copy(tx: Tx, job: JobRecord, percent: int) -> None:
    p = from_json(CopySnapshotParams, job.params)
    cat.update_snapshot(tx, p.snapshot_id, {"progress": f"{percent}%"})


JOB_KINDS = {"copy-snapshot": JobKind(run=_run_copy, fail=_fail_copy, progress=_progress_copy)}
