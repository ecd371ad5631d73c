"""Snapshot rules: DescribeSnapshots, DeleteSnapshot, Describe/Modify/ResetSnapshotAttribute,
CopySnapshot (a job). CreateSnapshot (of a volume) lives in volumes.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import SYSTEM_ACCOUNT_ALIAS, Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import images as cat_images
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat
from kiln.catalog.records import Filter, JobRecord, SnapshotRecord, utc_now
from kiln.catalog.snapshots import SNAPSHOT_FILTERS, SnapshotPermissionRecord
from kiln.catalog.wildcard import matches_text
from kiln.errors import Ec2Error
from kiln.services import kms, kms_state
from kiln.services.context import Caller, Services
from kiln.services.jobs import JobContext, JobKind
from kiln.services.snapshot_access import (
    NO_VOLUME,
    check_snapshot_id,
    completed_snapshot,
    not_found,
    owned_snapshot,
)
from kiln.services.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import (
    ACCOUNT_RE,
    check_filters,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)
from kiln.services.volumes import release_bases
from kiln.store import copy_snapshot as store_copy_snapshot
from kiln.types import new_id

log = logging.getLogger(__name__)

FILTER_KINDS: dict[str, str] = {**{n: "str" for n in SNAPSHOT_FILTERS}, "encrypted": "bool",
                                "volume-size": "int", "owner-alias": "str", "tag-key": "str"}
WELL_KNOWN_ALIASES = frozenset({"amazon", "aws-marketplace", "aws-backup-vault",
                                SYSTEM_ACCOUNT_ALIAS})
ATTRIBUTES = ("productCodes", "createVolumePermission")


@dataclass(frozen=True, slots=True)
class DescribeSnapshotsRequest:
    snapshot_ids: tuple[str, ...] = ()
    owner_ids: tuple[str, ...] = ()
    restorable_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DescribeSnapshotsResult:
    snapshots: tuple[SnapshotRecord, ...]
    next_token: str | None


def _owners(tx: Tx, caller: Caller, owners: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for o in owners:
        if o == "self":
            out.append(caller.account_id)
        elif ACCOUNT_RE.match(o):
            out.append(o)
        else:
            acct = cat_accounts.account_by_alias(tx, o)
            if acct is not None:
                out.append(acct.account_id)
            elif o not in WELL_KNOWN_ALIASES:
                raise Ec2Error(errors.InvalidUserIDMalformed, f'Invalid user id: "{o}"')
    return tuple(out) or ("",)  # owners that resolve to nobody match nothing


def _restorable_by(caller: Caller, users: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for u in users:
        if u == "self":
            out.append(caller.account_id)
        elif u == "all" or ACCOUNT_RE.match(u):
            out.append(u)
        else:
            raise Ec2Error(errors.InvalidUserIDMalformed, f'Invalid user id: "{u}"')
    return tuple(out)


def _alias_filters(tx: Tx, filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """``owner-alias`` as an ``owner-id`` filter (aliases live on accounts, not snapshots)."""
    out = []
    for f in filters:
        if f.name == "owner-alias":
            ids = [a.account_id for a in cat_accounts.list_accounts(tx) if a.alias and any(
                matches_text(a.alias, v) for v in f.values)]
            out.append(Filter("owner-id", tuple(ids) or ("",)))
        else:
            out.append(f)
    return tuple(out)


def describe_snapshots(services: Services, caller: Caller,
                       req: DescribeSnapshotsRequest) -> DescribeSnapshotsResult:
    for sid in req.snapshot_ids:
        check_snapshot_id(sid)
    checked = check_filters(req.filters, FILTER_KINDS)
    check_max_results(req.max_results, 5, 1000)
    if req.max_results is not None and req.snapshot_ids:
        raise Ec2Error(errors.InvalidParameterCombination,
                       "The parameter SnapshotIds cannot be used with the parameter maxResults")
    dry_run(req.dry_run)
    fingerprint = ["DescribeSnapshots", caller.account_id, caller.region, req.snapshot_ids,
                   req.owner_ids, req.restorable_by, [(f.name, f.values) for f in checked]]
    after = decode_token(req.next_token, fingerprint)
    ids_wanted = tuple(dict.fromkeys(req.snapshot_ids))
    dialect = services.catalog.dialect
    with services.catalog.read() as tx:
        ids = cat.query_snapshot_ids(
            tx, caller.region, caller.account_id, dialect, snapshot_ids=ids_wanted,
            owners=_owners(tx, caller, req.owner_ids) if req.owner_ids else (),
            restorable_by=_restorable_by(caller, req.restorable_by),
            filters=_alias_filters(tx, checked), after=str(after) if after is not None else None,
            limit=req.max_results + 1 if req.max_results else None)
        if ids_wanted:
            missing = [i for i in ids_wanted if i not in set(ids)]
            seen = set(cat.query_snapshot_ids(tx, caller.region, caller.account_id, dialect,
                                              snapshot_ids=missing)) if missing else set()
            unknown = [i for i in missing if i not in seen]
            if unknown:
                raise not_found(unknown)
        token = None
        if req.max_results and len(ids) > req.max_results:
            ids = ids[:req.max_results]
            token = encode_token(ids[-1], fingerprint)
        found = cat.get_snapshots(tx, ids, caller.account_id)
    return DescribeSnapshotsResult(tuple(found), token)


def delete_snapshot(services: Services, caller: Caller, snapshot_id: str,
                    dry_run_flag: bool) -> None:
    with services.catalog.write() as tx:
        snap = owned_snapshot(tx, caller, snapshot_id, dry_run_flag)
        users = cat_images.images_using_snapshot(tx, snapshot_id)
        if users:
            raise Ec2Error(errors.InvalidSnapshotInUse,
                           f"The snapshot {snapshot_id} is currently in use by {users[0]}")
        if snap.state == "pending":
            raise Ec2Error(errors.IncorrectState,
                           f"The snapshot {snapshot_id} is pending; delete it once it completes.")
        dry_run(dry_run_flag)
        cat.delete_snapshot(tx, snapshot_id)
    store = services.stores[caller.region]
    store.delete(snapshot_id)  # after the commit: the catalog no longer names it
    release_bases(services, caller.region, snapshot_id)
    log.info("deleted snapshot %s", snapshot_id)


# --- attributes ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SnapshotAttributeResult:
    snapshot_id: str
    create_volume_permissions: tuple[SnapshotPermissionRecord, ...] | None = None
    product_codes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ModifySnapshotAttributeRequest:
    snapshot_id: str
    attribute: str | None = None
    operation_type: str | None = None
    add: tuple[SnapshotPermissionRecord, ...] = ()
    remove: tuple[SnapshotPermissionRecord, ...] = ()
    dry_run: bool = False


def _check_attribute(attribute: str) -> None:
    if attribute not in ATTRIBUTES:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Value ({attribute}) for parameter attribute is invalid. "
                       f"Expecting one of: {', '.join(ATTRIBUTES)}.")


def describe_snapshot_attribute(services: Services, caller: Caller, snapshot_id: str,
                                attribute: str, dry_run_flag: bool) -> SnapshotAttributeResult:
    _check_attribute(attribute)
    with services.catalog.read() as tx:
        owned_snapshot(tx, caller, snapshot_id, dry_run_flag)
        dry_run(dry_run_flag)
        if attribute == "productCodes":
            return SnapshotAttributeResult(snapshot_id, product_codes=())
        perms = cat.snapshot_permissions(tx, snapshot_id)
    return SnapshotAttributeResult(snapshot_id, create_volume_permissions=tuple(perms))


def _check_permissions(perms: tuple[SnapshotPermissionRecord, ...]) -> None:
    for p in perms:
        if p.group is not None:
            if p.group != "all" or p.user_id is not None:
                raise Ec2Error(errors.InvalidParameterValue,
                               f"Value ({p.group}) for parameter Group is invalid. Expecting 'all'.")
        elif p.user_id is None or not ACCOUNT_RE.match(p.user_id):
            raise Ec2Error(errors.InvalidUserIDMalformed, f'Invalid user id: "{p.user_id}"')


def modify_snapshot_attribute(services: Services, caller: Caller,
                              req: ModifySnapshotAttributeRequest) -> None:
    if req.attribute is not None:
        _check_attribute(req.attribute)
        if req.attribute == "productCodes":
            raise Ec2Error(errors.InvalidParameterValue,
                           "The productCodes attribute of a snapshot cannot be modified.")
    if not (req.add or req.remove):
        raise Ec2Error(errors.MissingParameter, "The request must contain the parameter "
                                                "CreateVolumePermission or UserId/GroupName")
    _check_permissions(req.add + req.remove)
    with services.catalog.write() as tx:
        snap = owned_snapshot(tx, caller, req.snapshot_id, req.dry_run)
        if any(p.group == "all" for p in req.add) and snap.encrypted:
            raise Ec2Error(errors.InvalidParameterValue,
                           "Encrypted snapshots cannot be shared publicly.")
        dry_run(req.dry_run)
        if req.add:
            cat.add_snapshot_permissions(tx, req.snapshot_id, req.add)
        if req.remove:
            cat.remove_snapshot_permissions(tx, req.snapshot_id, req.remove)


def reset_snapshot_attribute(services: Services, caller: Caller, snapshot_id: str,
                             attribute: str, dry_run_flag: bool) -> None:
    _check_attribute(attribute)
    if attribute != "createVolumePermission":
        raise Ec2Error(errors.InvalidParameterValue,
                       "Only the createVolumePermission attribute can be reset.")
    with services.catalog.write() as tx:
        owned_snapshot(tx, caller, snapshot_id, dry_run_flag)
        dry_run(dry_run_flag)
        cat.remove_snapshot_permissions(tx, snapshot_id, None)


# --- CopySnapshot ----------------------------------------------------------------------------
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
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Value ({region}) for parameter {what} is invalid. "
                       f"Known regions: {', '.join(services.regions)}.")
    return region


def copy_snapshot(services: Services, caller: Caller, req: CopySnapshotRequest) -> str:
    """A pending copy of a snapshot the caller may see, in the caller's region."""
    check_region(services, req.source_region)
    if req.destination_region is not None and req.destination_region != caller.region:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"DestinationRegion {req.destination_region} must be the region the "
                       f"request is sent to ({caller.region}).")
    check_snapshot_id(req.source_snapshot_id)
    check_tag_specs(req.tag_specs, ("snapshot",))
    if req.description is not None and len(req.description) > 255:
        raise Ec2Error(errors.InvalidParameterValue, "Description is longer than 255 characters")
    with services.catalog.read() as tx:
        src = completed_snapshot(tx, Caller(caller.account_id, req.source_region),
                                 req.source_snapshot_id)
    key = kms.choose_key(services.catalog, caller.account_id, caller.region, req.encrypted,
                         req.kms_key_id, source_encrypted=src.encrypted)
    with services.catalog.read() as tx:  # issue 9: the source's key must be usable too
        kms_state.require_usable_id(tx, services.catalog, src.data_key_id)
    snapshot_id = new_id("snap")
    job_id = new_id("copy-snap")
    with services.catalog.write() as tx:
        dry_run(req.dry_run)
        cat.insert_snapshot(tx, SnapshotRecord(
            snapshot_id=snapshot_id, region=caller.region, owner_id=caller.account_id,
            volume_size=src.volume_size, full_size_bytes=src.full_size_bytes, state="pending",
            start_time=utc_now(), volume_id=NO_VOLUME, progress="0%",
            encrypted=key is not None, kms_key_id=kms.key_arn(key) if key else None,
            data_key_id=key.key_id if key else None,
            description=req.description if req.description is not None else
            f"[Copied {src.snapshot_id} from {req.source_region}]"))
        apply_tag_specs(tx, caller, req.tag_specs, {"snapshot": [snapshot_id]})
        cat_jobs.create_job(tx, job_id, "copy-snapshot", caller.region, caller.account_id, {
            "source_region": req.source_region, "source_snapshot_id": src.snapshot_id,
            "source_key_id": src.data_key_id, "snapshot_id": snapshot_id,
            "key_id": key.key_id if key else None})
    services.jobs.submit(job_id)
    log.info("copying %s/%s to %s/%s (job %s)", req.source_region, src.snapshot_id,
             caller.region, snapshot_id, job_id)
    return snapshot_id


def copy_store_snapshot(ctx: JobContext, source_region: str, source_snapshot_id: str,
                        source_key_id: str | None, snapshot_id: str, key_id: str | None,
                        lo: int = 0, hi: int = 100) -> dict[str, int]:
    """Copy one snapshot between region stores (skipped if already done). Only the chunks the
    destination lacks are sent; a different key re-encrypts."""
    services = ctx.services
    src_store = services.stores[source_region]
    dst_store = services.stores[ctx.job.region]
    if dst_store.has(snapshot_id):
        return {"chunks_sent": 0, "bytes_sent": 0, "chunks_total": 0}
    if not src_store.has(source_snapshot_id):
        raise Ec2Error(errors.InvalidSnapshotNotFound,
                       f"The source snapshot {source_snapshot_id} no longer exists.")
    with services.catalog.read() as tx:
        src_key = kms.key_by_id(tx, services.catalog, source_key_id) if source_key_id else None
        dst_key = kms.key_by_id(tx, services.catalog, key_id) if key_id else None
    res = store_copy_snapshot(src_store, dst_store, source_snapshot_id, snapshot_id,
                              src_key=src_key, dst_key=dst_key, progress=ctx.reporter(lo, hi))
    return {"chunks_sent": res.chunks_sent, "bytes_sent": res.bytes_sent,
            "chunks_total": res.chunks_total}


def _run_copy(ctx: JobContext) -> None:
    p = ctx.params
    sent = copy_store_snapshot(ctx, p["source_region"], p["source_snapshot_id"],
                               p["source_key_id"], p["snapshot_id"], p["key_id"])
    with ctx.services.catalog.write() as tx:
        cat.update_snapshot(tx, p["snapshot_id"], {"state": "completed", "progress": "100%",
                                                   "completion_time": utc_now()})
        ctx.complete(tx, sent)


def _fail_copy(tx: Tx, job: JobRecord, message: str) -> None:
    cat.update_snapshot(tx, job.params["snapshot_id"], {"state": "error",
                                                        "state_message": message})


def _progress_copy(tx: Tx, job: JobRecord, percent: int) -> None:
    cat.update_snapshot(tx, job.params["snapshot_id"], {"progress": f"{percent}%"})


JOB_KINDS = {"copy-snapshot": JobKind(run=_run_copy, fail=_fail_copy, progress=_progress_copy)}
