"""Instances: one row per VM, with its launch parameters and lifecycle state."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.marketplace import add_instance_product_codes, instance_product_codes
from kiln.catalog.records import ProductCodeRecord, TagRecord, VolumeRecord
from kiln.catalog.tags import tags_for

I = models.Instance  # noqa: E741  # the table, as in the sibling modules
_COLUMNS = [c.name for c in I.__table__.columns]
_IMMUTABLE = frozenset({"instance_id", "region", "owner_id", "reservation_id"})


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    instance_id: str
    region: str
    owner_id: str
    reservation_id: str
    image_id: str
    instance_type: str
    vcpus: int
    memory_mib: int
    state: str
    launch_time: str
    availability_zone: str
    architecture: str
    root_device_name: str
    root_device_type: str
    private_ip: str
    mac_address: str
    security_groups: list[dict[str, str]]
    ami_launch_index: int = 0
    state_reason_code: str | None = None
    state_reason_message: str | None = None
    state_transition_reason: str | None = None
    key_name: str | None = None
    public_key: str | None = None
    root_snapshot_id: str | None = None
    ssh_port: int | None = None
    user_data: str | None = None
    disable_api_termination: bool = False
    shutdown_behavior: str = "stop"
    client_token: str | None = None
    ebs_optimized: bool = False
    boot_count: int = 0
    terminated_at: str | None = None
    vpc_id: str | None = None
    subnet_id: str | None = None
    public_ip: str | None = None
    metadata_http_tokens: str = "optional"
    metadata_hop_limit: int = 1
    metadata_http_endpoint: str = "enabled"
    metadata_tags: str = "disabled"
    tags: tuple[TagRecord, ...] = ()
    # Its image's product codes at launch (docs/marketplace.md); read by get_instances only.
    product_codes: tuple[ProductCodeRecord, ...] = ()


def insert_instance(tx: Session, inst: InstanceRecord) -> None:
    tx.add(I(**{c: getattr(inst, c) for c in _COLUMNS}))
    tx.flush()
    add_instance_product_codes(tx, inst.instance_id, inst.product_codes)


def get_instances(tx: Session, instance_ids: Sequence[str], viewer: str) -> list[InstanceRecord]:
    """Records in the given order (missing ids skipped) with ``viewer``'s tags and their
    product codes; no access check."""
    if not instance_ids:
        return []
    rows = {
        r["instance_id"]: r
        for r in tx.execute(select(I.__table__).where(I.instance_id.in_(instance_ids))).mappings()
    }
    ids = [i for i in dict.fromkeys(instance_ids) if i in rows]
    tags = tags_for(tx, ids, viewer)
    codes = instance_product_codes(tx, ids)
    return [
        InstanceRecord(**dict(rows[i]), tags=tuple(tags.get(i, ())), product_codes=codes.get(i, ()))
        for i in ids
    ]


def get_instance(tx: Session, instance_id: str, viewer: str) -> InstanceRecord | None:
    found = get_instances(tx, [instance_id], viewer)
    return found[0] if found else None


def query_instance_ids(
    tx: Session,
    region: str,
    owner_id: str,
    instance_ids: Sequence[str] = (),
    states: Collection[str] = (),
    hidden_before: str | None = None,
) -> list[str]:
    """The owner's instance ids in ``region`` (ordered by id), optionally only these ids or
    states; terminated instances whose ``terminated_at`` is before ``hidden_before`` are left
    out (EC2 shows terminated instances for about an hour)."""
    conds: list[ColumnElement[bool]] = [I.region == region, I.owner_id == owner_id]
    if instance_ids:
        conds.append(I.instance_id.in_(instance_ids))
    if states:
        conds.append(I.state.in_(list(states)))
    if hidden_before is not None:
        conds.append((I.terminated_at.is_(None)) | (I.terminated_at >= hidden_before))
    return list(tx.scalars(select(I.instance_id).where(*conds).order_by(I.instance_id)))


def instances_in_states(
    tx: Session, states: Collection[str], vpc_id: str | None = None
) -> list[InstanceRecord]:
    """Every account's instances in any region whose state is one of ``states`` (and, with
    ``vpc_id``, that are in that VPC)."""
    q = select(I.__table__).where(I.state.in_(list(states)))
    if vpc_id is not None:
        q = q.where(I.vpc_id == vpc_id)
    rows = tx.execute(q.order_by(I.instance_id)).mappings().all()
    return [InstanceRecord(**dict(r)) for r in rows]


def ports_in_use(tx: Session) -> set[int]:
    """SSH ports promised to instances that are not terminated."""
    return {
        p for p in tx.scalars(select(I.ssh_port).where(I.state != "terminated")) if p is not None
    }


def update_instance(
    tx: Session,
    instance_id: str,
    changes: Mapping[str, object],
    expect_states: Collection[str] | None = None,
) -> bool:
    """Apply ``changes``; with ``expect_states``, only if the state is still one of them.
    True if the row was changed (compare-and-set for concurrent lifecycle calls)."""
    bad = set(changes) - set(_COLUMNS) | (_IMMUTABLE & set(changes))
    if bad:
        raise ValueError(f"not mutable instance fields: {sorted(bad)}")
    stmt = update(I).where(I.instance_id == instance_id)
    if expect_states is not None:
        stmt = stmt.where(I.state.in_(list(expect_states)))
    return bool(tx.execute(stmt.values(**changes)).rowcount)  # type: ignore[attr-defined]  # CursorResult


def volumes_of_instances(tx: Session, instance_ids: Sequence[str]) -> dict[str, list[VolumeRecord]]:
    """The volumes attached to each instance, by device name."""
    if not instance_ids:
        return {}
    V = models.Volume  # noqa: N806
    out: dict[str, list[VolumeRecord]] = {}
    for r in tx.execute(
        select(V.__table__).where(V.instance_id.in_(instance_ids)).order_by(V.instance_id, V.device)
    ).mappings():
        out.setdefault(r["instance_id"], []).append(VolumeRecord(**dict(r)))
    return out
