"""Snapshot rules: DescribeSnapshots, DeleteSnapshot. The family's other actions have their own
modules: create_snapshot.py, copy_snapshot.py, snapshot_attributes.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import images as cat_images
from kiln.catalog import snapshots as cat
from kiln.catalog.records import Filter, SnapshotRecord
from kiln.catalog.snapshots import SNAPSHOT_FILTERS
from kiln.catalog.wildcard import matches_text
from kiln.errors import KilnError
from kiln.services.accounts.owners import resolve_owners
from kiln.services.context import Caller, Services
from kiln.services.snapshots.access import (
    check_snapshot_id,
    not_found,
    owned_snapshot,
)
from kiln.services.snapshots.volumes import release_bases
from kiln.services.validate import (
    ACCOUNT_RE,
    check_filters,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)

log = logging.getLogger(__name__)

FILTER_KINDS: dict[str, str] = {
    **{n: "str" for n in SNAPSHOT_FILTERS},
    "encrypted": "bool",
    "volume-size": "int",
    "owner-alias": "str",
    "tag-key": "str",
}


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


def _restorable_by(caller: Caller, users: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for u in users:
        if u == "self":
            out.append(caller.account_id)
        elif u == "all" or ACCOUNT_RE.match(u):
            out.append(u)
        else:
            raise KilnError(errors.InvalidUserIDMalformed, f'Invalid user id: "{u}"')
    return tuple(out)


def _alias_filters(tx: Tx, filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """``owner-alias`` as an ``owner-id`` filter (aliases live on accounts, not snapshots)."""
    out = []
    for f in filters:
        if f.name == "owner-alias":
            ids = [
                a.account_id
                for a in cat_accounts.list_accounts(tx)
                if a.owner_alias and any(matches_text(a.owner_alias, v) for v in f.values)
            ]
            out.append(Filter("owner-id", tuple(ids) or ("",)))
        else:
            out.append(f)
    return tuple(out)


def describe_snapshots(
    services: Services, caller: Caller, req: DescribeSnapshotsRequest
) -> DescribeSnapshotsResult:
    for sid in req.snapshot_ids:
        check_snapshot_id(sid)
    checked = check_filters(req.filters, FILTER_KINDS)
    check_max_results(req.max_results, 5, 1000)
    if req.max_results is not None and req.snapshot_ids:
        raise KilnError(
            errors.InvalidParameterCombination,
            "The parameter SnapshotIds cannot be used with the parameter maxResults",
        )
    dry_run(req.dry_run)
    fingerprint = [
        "DescribeSnapshots",
        caller.account_id,
        caller.region,
        req.snapshot_ids,
        req.owner_ids,
        req.restorable_by,
        [(f.name, f.values) for f in checked],
    ]
    after = decode_token(req.next_token, fingerprint)
    ids_wanted = tuple(dict.fromkeys(req.snapshot_ids))
    dialect = services.catalog.dialect
    with services.catalog.read() as tx:
        ids = cat.query_snapshot_ids(
            tx,
            caller.region,
            caller.account_id,
            dialect,
            snapshot_ids=ids_wanted,
            owners=resolve_owners(tx, caller, req.owner_ids, services.amazon_images)
            if req.owner_ids
            else (),
            restorable_by=_restorable_by(caller, req.restorable_by),
            filters=_alias_filters(tx, checked),
            after=str(after) if after is not None else None,
            limit=req.max_results + 1 if req.max_results else None,
        )
        if ids_wanted:
            missing = [i for i in ids_wanted if i not in set(ids)]
            seen = (
                set(
                    cat.query_snapshot_ids(
                        tx, caller.region, caller.account_id, dialect, snapshot_ids=missing
                    )
                )
                if missing
                else set()
            )
            unknown = [i for i in missing if i not in seen]
            if unknown:
                raise not_found(unknown)
        token = None
        if req.max_results and len(ids) > req.max_results:
            ids = ids[: req.max_results]
            token = encode_token(ids[-1], fingerprint)
        found = cat.get_snapshots(tx, ids, caller.account_id)
    return DescribeSnapshotsResult(tuple(found), token)


def delete_snapshot(
    services: Services, caller: Caller, snapshot_id: str, dry_run_flag: bool
) -> None:
    with services.catalog.write() as tx:
        snap = owned_snapshot(tx, caller, snapshot_id, dry_run_flag)
        users = cat_images.images_using_snapshot(tx, snapshot_id)
        if users:
            raise KilnError(
                errors.InvalidSnapshotInUse,
                f"The snapshot {snapshot_id} is currently in use by {users[0]}",
            )
        if snap.state == "pending":
            raise KilnError(
                errors.IncorrectState,
                f"The snapshot {snapshot_id} is pending; delete it once it completes.",
            )
        dry_run(dry_run_flag)
        cat.delete_snapshot(tx, snapshot_id)
    store = services.stores[caller.region]
    store.delete(snapshot_id)  # after the commit: the catalog no longer names it
    release_bases(services, caller.region, snapshot_id)
    log.info("deleted snapshot %s", snapshot_id)
