"""VPCs, subnets, security groups and their rules (migration 0005; docs/networks.md)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import TagRecord
from kiln.catalog.tags import delete_resource_tags, tags_for

#: Instance states whose addresses are taken (everything but terminated).
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


@dataclass(frozen=True, slots=True)
class VpcRecord:
    vpc_id: str
    region: str
    owner_id: str
    cidr_block: str
    is_default: bool
    state: str
    created: str
    enable_dns_support: bool = True
    enable_dns_hostnames: bool = False
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class SubnetRecord:
    subnet_id: str
    vpc_id: str
    region: str
    owner_id: str
    availability_zone: str
    cidr_block: str
    default_for_az: bool
    map_public_ip_on_launch: bool
    state: str
    created: str
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class SecurityGroupRecord:
    group_id: str
    vpc_id: str
    region: str
    owner_id: str
    group_name: str
    description: str
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleRecord:
    rule_id: str
    group_id: str
    is_egress: bool
    ip_protocol: str
    from_port: int
    to_port: int
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    referenced_group_id: str | None = None
    description: str | None = None
    tags: tuple[TagRecord, ...] = ()

    def same_permission(self, other: RuleRecord) -> bool:
        """EC2's duplicate test: the same direction, protocol, ports and peer."""
        return (
            self.is_egress == other.is_egress
            and self.ip_protocol == other.ip_protocol
            and self.from_port == other.from_port
            and self.to_port == other.to_port
            and self.cidr_ipv4 == other.cidr_ipv4
            and self.cidr_ipv6 == other.cidr_ipv6
            and self.referenced_group_id == other.referenced_group_id
        )


def _cols(model: type[models.Base]) -> list[str]:
    return [c.name for c in model.__table__.columns]


R = TypeVar("R", VpcRecord, SubnetRecord, SecurityGroupRecord, RuleRecord)


def _with_tags(
    tx: Session, cls: type[R], rows: Sequence[Any], key: str, viewer: str | None
) -> list[R]:
    plain = [cls(**dict(r)) for r in rows]
    if viewer is None or not plain:
        return plain
    tags = tags_for(tx, [getattr(p, key) for p in plain], viewer)
    return [cls(**{**_as_dict(p), "tags": tuple(tags.get(getattr(p, key), ()))}) for p in plain]


def _as_dict(rec: object) -> dict[str, Any]:
    return {f: getattr(rec, f) for f in rec.__dataclass_fields__}  # type: ignore[attr-defined]


def _list(
    tx: Session,
    cls: type[R],
    model: type[models.Base],
    key: str,
    viewer: str | None,
    ids: Collection[str] | None,
    **equal: str | None,
) -> list[R]:
    """Rows of ``model`` as ``cls`` records, ordered by ``key``: those with these ``ids`` (if
    given) and whose columns equal the non-None ``equal`` values; tags as ``viewer`` sees them."""
    t = model.__table__
    q = select(t).order_by(t.c[key])
    if ids is not None:
        q = q.where(t.c[key].in_(list(ids)))
    for column, value in equal.items():
        if value is not None:
            q = q.where(t.c[column] == value)
    return _with_tags(tx, cls, tx.execute(q).mappings().all(), key, viewer)


# --- default VPCs -----------------------------------------------------------------------------
def default_vpc_entry(tx: Session, owner_id: str, region: str) -> tuple[bool, str | None]:
    """(made, vpc_id): whether the account's default VPC in ``region`` was ever made, and its id
    (None once deleted)."""
    row = tx.get(models.DefaultVpc, (owner_id, region))
    return (False, None) if row is None else (True, row.vpc_id)


def claim_default_vpc(tx: Session, owner_id: str, region: str, vpc_id: str) -> bool:
    """Record ``vpc_id`` as the default VPC; False if another transaction claimed it first
    (the caller then makes nothing)."""
    try:
        with tx.begin_nested():
            tx.add(models.DefaultVpc(owner_id=owner_id, region=region, vpc_id=vpc_id))
            tx.flush()
        return True
    except IntegrityError:
        return False


def forget_default_vpc(tx: Session, vpc_id: str) -> None:
    tx.execute(
        update(models.DefaultVpc).where(models.DefaultVpc.vpc_id == vpc_id).values(vpc_id=None)
    )


def default_vpc(tx: Session, owner_id: str, region: str) -> VpcRecord | None:
    _, vpc_id = default_vpc_entry(tx, owner_id, region)
    return get_vpc(tx, vpc_id) if vpc_id else None


# --- VPCs -------------------------------------------------------------------------------------
def insert_vpc(tx: Session, vpc: VpcRecord) -> None:
    tx.add(models.Vpc(**{c: getattr(vpc, c) for c in _cols(models.Vpc)}))
    tx.flush()


def get_vpc(tx: Session, vpc_id: str, viewer: str | None = None) -> VpcRecord | None:
    found = list_vpcs(tx, ids=[vpc_id], viewer=viewer)
    return found[0] if found else None


def list_vpcs(
    tx: Session,
    owner_id: str | None = None,
    region: str | None = None,
    ids: Collection[str] | None = None,
    viewer: str | None = None,
) -> list[VpcRecord]:
    return _list(tx, VpcRecord, models.Vpc, "vpc_id", viewer, ids, owner_id=owner_id, region=region)


def delete_vpc(tx: Session, vpc_id: str) -> None:
    forget_default_vpc(tx, vpc_id)
    delete_resource_tags(tx, vpc_id)
    tx.execute(delete(models.Vpc).where(models.Vpc.vpc_id == vpc_id))


# --- subnets ----------------------------------------------------------------------------------
def insert_subnet(tx: Session, subnet: SubnetRecord) -> None:
    tx.add(models.Subnet(**{c: getattr(subnet, c) for c in _cols(models.Subnet)}))
    tx.flush()


def get_subnet(tx: Session, subnet_id: str, viewer: str | None = None) -> SubnetRecord | None:
    found = list_subnets(tx, ids=[subnet_id], viewer=viewer)
    return found[0] if found else None


def list_subnets(
    tx: Session,
    owner_id: str | None = None,
    region: str | None = None,
    ids: Collection[str] | None = None,
    vpc_id: str | None = None,
    viewer: str | None = None,
) -> list[SubnetRecord]:
    return _list(tx, SubnetRecord, models.Subnet, "subnet_id", viewer, ids,
                 owner_id=owner_id, region=region, vpc_id=vpc_id)  # fmt: skip


def subnets_of_vpc(tx: Session, vpc_id: str) -> list[SubnetRecord]:
    return list_subnets(tx, vpc_id=vpc_id)


def delete_subnet(tx: Session, subnet_id: str) -> None:
    delete_resource_tags(tx, subnet_id)
    tx.execute(delete(models.Subnet).where(models.Subnet.subnet_id == subnet_id))


# --- security groups --------------------------------------------------------------------------
def insert_group(tx: Session, group: SecurityGroupRecord) -> None:
    tx.add(models.SecurityGroup(**{c: getattr(group, c) for c in _cols(models.SecurityGroup)}))
    tx.flush()


def get_group(tx: Session, group_id: str, viewer: str | None = None) -> SecurityGroupRecord | None:
    found = list_groups(tx, ids=[group_id], viewer=viewer)
    return found[0] if found else None


def group_by_name(
    tx: Session, vpc_id: str, name: str, viewer: str | None = None
) -> SecurityGroupRecord | None:
    found = _list(tx, SecurityGroupRecord, models.SecurityGroup, "group_id", viewer, None,
                  vpc_id=vpc_id, group_name=name)  # fmt: skip
    return found[0] if found else None


def list_groups(
    tx: Session,
    owner_id: str | None = None,
    region: str | None = None,
    ids: Collection[str] | None = None,
    vpc_id: str | None = None,
    viewer: str | None = None,
) -> list[SecurityGroupRecord]:
    return _list(tx, SecurityGroupRecord, models.SecurityGroup, "group_id", viewer, ids,
                 owner_id=owner_id, region=region, vpc_id=vpc_id)  # fmt: skip


def delete_group(tx: Session, group_id: str) -> None:
    for rule in rules_of(tx, [group_id]):
        delete_resource_tags(tx, rule.rule_id)
    tx.execute(
        delete(models.SecurityGroupRule).where(models.SecurityGroupRule.group_id == group_id)
    )
    delete_resource_tags(tx, group_id)
    tx.execute(delete(models.SecurityGroup).where(models.SecurityGroup.group_id == group_id))


# --- rules ------------------------------------------------------------------------------------
def insert_rules(tx: Session, rules: Sequence[RuleRecord]) -> None:
    if rules:
        cols = _cols(models.SecurityGroupRule)
        tx.execute(
            insert(models.SecurityGroupRule), [{c: getattr(r, c) for c in cols} for r in rules]
        )


def rules_of(
    tx: Session, group_ids: Collection[str], viewer: str | None = None
) -> list[RuleRecord]:
    if not group_ids:
        return []
    t = models.SecurityGroupRule.__table__
    q = select(t).where(t.c.group_id.in_(list(group_ids))).order_by(t.c.rule_id)
    return _with_tags(tx, RuleRecord, tx.execute(q).mappings().all(), "rule_id", viewer)


def rules_by_id(
    tx: Session, rule_ids: Collection[str], viewer: str | None = None
) -> list[RuleRecord]:
    t = models.SecurityGroupRule.__table__
    q = select(t).where(t.c.rule_id.in_(list(rule_ids))).order_by(t.c.rule_id)
    return _with_tags(tx, RuleRecord, tx.execute(q).mappings().all(), "rule_id", viewer)


def rules_referencing(tx: Session, group_id: str) -> list[RuleRecord]:
    """Rules of other groups whose peer is ``group_id``."""
    t = models.SecurityGroupRule.__table__
    q = select(t).where(t.c.referenced_group_id == group_id, t.c.group_id != group_id)
    return [RuleRecord(**dict(r)) for r in tx.execute(q).mappings().all()]


def delete_rules(tx: Session, rule_ids: Collection[str]) -> None:
    for rid in rule_ids:
        delete_resource_tags(tx, rid)
    tx.execute(
        delete(models.SecurityGroupRule).where(models.SecurityGroupRule.rule_id.in_(list(rule_ids)))
    )


# --- what instances hold ----------------------------------------------------------------------
def _live_instances(tx: Session, where: Any) -> list[dict[str, Any]]:
    t = models.Instance.__table__
    q = select(t.c.instance_id, t.c.private_ip, t.c.public_ip, t.c.security_groups, t.c.subnet_id,
               t.c.vpc_id, t.c.state).where(t.c.state.in_(LIVE_STATES), where)  # fmt: skip
    return [dict(r) for r in tx.execute(q).mappings().all()]


def instances_in_vpc(tx: Session, vpc_id: str) -> list[str]:
    """The ids of the VPC's instances that are not terminated."""
    t = models.Instance.__table__
    return [str(r["instance_id"]) for r in _live_instances(tx, t.c.vpc_id == vpc_id)]


def instances_in_subnet(tx: Session, subnet_id: str) -> list[str]:
    t = models.Instance.__table__
    return [str(r["instance_id"]) for r in _live_instances(tx, t.c.subnet_id == subnet_id)]


def private_ips_in_subnet(tx: Session, subnet_id: str) -> list[str]:
    t = models.Instance.__table__
    return [str(r["private_ip"]) for r in _live_instances(tx, t.c.subnet_id == subnet_id)]


def group_members(tx: Session, vpc_id: str, group_id: str) -> list[tuple[str, str]]:
    """(instance id, private address) of the VPC's live instances in ``group_id``."""
    t = models.Instance.__table__
    out = []
    for r in _live_instances(tx, t.c.vpc_id == vpc_id):
        groups = r["security_groups"]
        if isinstance(groups, list) and any(
            isinstance(g, dict) and g.get("GroupId") == group_id for g in groups
        ):
            out.append((str(r["instance_id"]), str(r["private_ip"])))
    return out


def public_ips_in_use(tx: Session) -> list[str]:
    t = models.Instance.__table__
    return [str(r["public_ip"]) for r in _live_instances(tx, t.c.public_ip.is_not(None))]
