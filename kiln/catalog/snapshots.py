"""Snapshots, their createVolumePermission grants, and volumes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.accounts import aliases_of
from kiln.catalog.records import Filter, SnapshotRecord, VolumeRecord
from kiln.catalog.tags import delete_resource_tags, tags_for
from kiln.catalog.wildcard import match_any

S = models.Snapshot
SP = models.SnapshotPermission
V = models.Volume
_SNAP_COLUMNS = [c.name for c in S.__table__.columns]
_VOL_COLUMNS = [c.name for c in V.__table__.columns]

#: DescribeSnapshots filters -> column (tags are handled like images: tag:<k>, tag-key).
SNAPSHOT_FILTERS: dict[str, str] = {
    "description": "description",
    "encrypted": "encrypted",
    "kms-key-id": "kms_key_id",
    "owner-id": "owner_id",
    "progress": "progress",
    "snapshot-id": "snapshot_id",
    "start-time": "start_time",
    "status": "state",
    "storage-tier": "storage_tier",
    "volume-id": "volume_id",
    "volume-size": "volume_size",
}


def insert_snapshot(tx: Session, snap: SnapshotRecord) -> None:
    tx.add(S(**{c: getattr(snap, c) for c in _SNAP_COLUMNS}))
    tx.flush()


def get_snapshot(tx: Session, snapshot_id: str, viewer: str) -> SnapshotRecord | None:
    found = get_snapshots(tx, [snapshot_id], viewer)
    return found[0] if found else None


def get_snapshots(tx: Session, snapshot_ids: Sequence[str], viewer: str) -> list[SnapshotRecord]:
    """Records in the given order, with ``viewer``'s tags; no visibility check."""
    if not snapshot_ids:
        return []
    rows = {
        r["snapshot_id"]: r
        for r in tx.execute(select(S.__table__).where(S.snapshot_id.in_(snapshot_ids))).mappings()
    }
    ids = [i for i in snapshot_ids if i in rows]
    tags = tags_for(tx, ids, viewer)
    aliases = aliases_of(tx, {rows[i]["owner_id"] for i in ids})
    return [
        SnapshotRecord(
            **dict(rows[i]),
            owner_alias=aliases.get(rows[i]["owner_id"]),
            tags=tuple(tags.get(i, ())),
        )
        for i in ids
    ]


def update_snapshot(tx: Session, snapshot_id: str, changes: Mapping[str, object]) -> None:
    bad = set(changes) - set(_SNAP_COLUMNS) | ({"snapshot_id", "owner_id"} & set(changes))
    if bad:
        raise ValueError(f"not mutable snapshot fields: {sorted(bad)}")
    tx.execute(update(S).where(S.snapshot_id == snapshot_id).values(**changes))


def delete_snapshot(tx: Session, snapshot_id: str) -> None:
    tx.execute(delete(SP).where(SP.snapshot_id == snapshot_id))
    delete_resource_tags(tx, snapshot_id)
    tx.execute(delete(S).where(S.snapshot_id == snapshot_id))


def visible_to(account_id: str) -> ColumnElement[bool]:
    """Who may see a snapshot, the one definition (single lookups and DescribeSnapshots both use
    it): its owner, an account granted createVolumePermission, or anyone (group ``all``)."""
    granted = exists().where(
        SP.snapshot_id == S.snapshot_id, or_(SP.user_id == account_id, SP.group_name == "all")
    )
    return or_(S.owner_id == account_id, granted)


def snapshot_visible(tx: Session, snapshot_id: str, account_id: str) -> bool:
    """Whether ``account_id`` may see the snapshot (:func:`visible_to`)."""
    n = tx.scalar(
        select(func.count())
        .select_from(S)
        .where(S.snapshot_id == snapshot_id, visible_to(account_id))
    )
    return bool(n)


@dataclass(frozen=True, slots=True)
class SnapshotPermissionRecord:
    user_id: str | None = None
    group: str | None = None


def snapshot_permissions(tx: Session, snapshot_id: str) -> list[SnapshotPermissionRecord]:
    return [
        SnapshotPermissionRecord(r.user_id, r.group_name)
        for r in tx.scalars(select(SP).where(SP.snapshot_id == snapshot_id).order_by(SP.id))
    ]


def add_snapshot_permissions(
    tx: Session, snapshot_id: str, perms: Iterable[SnapshotPermissionRecord]
) -> None:
    have = set(snapshot_permissions(tx, snapshot_id))
    for p in perms:
        if p not in have:
            tx.add(SP(snapshot_id=snapshot_id, user_id=p.user_id, group_name=p.group))
            have.add(p)
    tx.flush()
    _refresh_public(tx, snapshot_id)


def remove_snapshot_permissions(
    tx: Session, snapshot_id: str, perms: Iterable[SnapshotPermissionRecord] | None
) -> None:
    """Remove ``perms`` (all of them when None)."""
    if perms is None:
        tx.execute(delete(SP).where(SP.snapshot_id == snapshot_id))
    for p in perms or ():
        cond = SP.user_id == p.user_id if p.user_id else SP.group_name == p.group
        tx.execute(delete(SP).where(SP.snapshot_id == snapshot_id, cond))
    _refresh_public(tx, snapshot_id)


def _refresh_public(tx: Session, snapshot_id: str) -> None:
    n = (
        tx.scalar(
            select(func.count())
            .select_from(SP)
            .where(SP.snapshot_id == snapshot_id, SP.group_name == "all")
        )
        or 0
    )
    tx.execute(update(S).where(S.snapshot_id == snapshot_id).values(is_public=n > 0))


def query_snapshot_ids(
    tx: Session,
    region: str,
    caller: str,
    dialect: str,
    snapshot_ids: Sequence[str] = (),
    owners: Sequence[str] = (),
    restorable_by: Sequence[str] = (),
    filters: Sequence[Filter] = (),
    after: str | None = None,
    limit: int | None = None,
) -> list[str]:
    """Ids of snapshots ``caller`` may see in ``region`` matching every argument."""
    conds: list[ColumnElement[bool]] = [S.region == region, visible_to(caller)]
    if snapshot_ids:
        conds.append(S.snapshot_id.in_(snapshot_ids))
    if owners:
        conds.append(S.owner_id.in_(owners))
    if restorable_by:
        users = [u for u in restorable_by if u != "all"]
        conds.append(
            or_(
                S.is_public if "all" in restorable_by else False,
                S.owner_id.in_(users),
                exists().where(SP.snapshot_id == S.snapshot_id, SP.user_id.in_(users)),
            )
        )
    t = models.Tag
    for f in filters:
        if f.name.startswith("tag:"):
            conds.append(
                exists().where(
                    t.resource_id == S.snapshot_id,
                    t.owner_id == caller,
                    t.key == f.name[4:],
                    match_any(t.value, f.values, dialect),
                )
            )
        elif f.name == "tag-key":
            conds.append(
                exists().where(
                    t.resource_id == S.snapshot_id,
                    t.owner_id == caller,
                    match_any(t.key, f.values, dialect),
                )
            )
        elif f.name in ("encrypted",):
            conds.append(S.encrypted.in_([v.lower() == "true" for v in f.values]))
        elif f.name == "volume-size":
            conds.append(S.volume_size.in_([int(v) for v in f.values]))
        else:
            conds.append(match_any(getattr(S, SNAPSHOT_FILTERS[f.name]), f.values, dialect))
    if after is not None:
        conds.append(S.snapshot_id > after)
    stmt = select(S.snapshot_id).where(*conds).order_by(S.snapshot_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(tx.scalars(stmt))


def insert_volume(tx: Session, vol: VolumeRecord) -> None:
    tx.add(V(**{c: getattr(vol, c) for c in _VOL_COLUMNS}))
    tx.flush()


def get_volumes(tx: Session, volume_ids: Sequence[str], viewer: str) -> list[VolumeRecord]:
    if not volume_ids:
        return []
    rows = {
        r["volume_id"]: r
        for r in tx.execute(select(V.__table__).where(V.volume_id.in_(volume_ids))).mappings()
    }
    ids = [i for i in volume_ids if i in rows]
    tags = tags_for(tx, ids, viewer)
    return [VolumeRecord(**dict(rows[i]), tags=tuple(tags.get(i, ()))) for i in ids]


def update_volume(tx: Session, volume_id: str, changes: Mapping[str, object]) -> None:
    bad = set(changes) - set(_VOL_COLUMNS) | ({"volume_id", "owner_id"} & set(changes))
    if bad:
        raise ValueError(f"not mutable volume fields: {sorted(bad)}")
    tx.execute(update(V).where(V.volume_id == volume_id).values(**changes))


def delete_volume(tx: Session, volume_id: str) -> None:
    delete_resource_tags(tx, volume_id)
    tx.execute(delete(V).where(V.volume_id == volume_id))


def query_volume_ids(
    tx: Session, region: str, owner_id: str, volume_ids: Sequence[str] = ()
) -> list[str]:
    conds: list[ColumnElement[bool]] = [V.region == region, V.owner_id == owner_id]
    if volume_ids:
        conds.append(V.volume_id.in_(volume_ids))
    return list(tx.scalars(select(V.volume_id).where(*conds).order_by(V.volume_id)))


def snapshot_state(tx: Session, snapshot_id: str) -> str | None:
    """The snapshot's state, None if there is no such row (the rules' state table reads it)."""
    return tx.execute(select(S.state).where(S.snapshot_id == snapshot_id)).scalar_one_or_none()


def volume_state(tx: Session, volume_id: str) -> str | None:
    """The volume's state, None if there is no such row."""
    return tx.execute(select(V.state).where(V.volume_id == volume_id)).scalar_one_or_none()
