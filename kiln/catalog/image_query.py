"""The DescribeImages query: visibility, owners, executable users, filters, keyset pages.

The query returns image ids only (one indexed scan); :func:`kiln.catalog.images.get_images`
then loads the page's full records in four batched queries. See docs/catalog.md#indexes for
which index serves which shape.

Building the SQLAlchemy statement costs ~10x more than SQLite takes to run it (measured by
bench/api.py: ~1.9 ms of Python against ~0.1 ms of SQL at 10k images), so statements are
cached per request *shape*: the request's region, caller, time, owners, image ids, users, page
key and limit are bind parameters; the filters (whose values decide literal vs wildcard SQL)
are part of the shape. A repeated DescribeImages only binds values (see docs/bench-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from kiln.catalog import models
from kiln.catalog.accounts import owner_alias_column
from kiln.catalog.records import Filter
from kiln.catalog.wildcard import match_any

FilterKind = Literal["str", "bool", "int"]

IMG = models.Image
BDM = models.BlockDeviceMapping
LP = models.LaunchPermission

_COLUMN_FILTERS: dict[str, str] = {
    "architecture": "architecture",
    "boot-mode": "boot_mode",
    "creation-date": "creation_date",
    "deprecation-time": "deprecation_time",
    "description": "description",
    "hypervisor": "hypervisor",
    "image-id": "image_id",
    "image-type": "image_type",
    "imds-support": "imds_support",
    "kernel-id": "kernel_id",
    "manifest-location": "image_location",
    "name": "name",
    "owner-id": "owner_id",
    "platform": "platform",
    "platform-details": "platform_details",
    "ramdisk-id": "ramdisk_id",
    "root-device-name": "root_device_name",
    "root-device-type": "root_device_type",
    "source-image-id": "source_image_id",
    "source-image-region": "source_image_region",
    "source-instance-id": "source_instance_id",
    "sriov-net-support": "sriov_net_support",
    "state": "state",
    "state-reason-code": "state_reason_code",
    "state-reason-message": "state_reason_message",
    "tpm-support": "tpm_support",
    "usage-operation": "usage_operation",
    "virtualization-type": "virtualization_type",
}
_BOOL_COLUMN_FILTERS = {"is-public": "is_public", "ena-support": "ena_support"}
_BDM_FILTERS: dict[str, tuple[str, FilterKind]] = {
    "block-device-mapping.delete-on-termination": ("delete_on_termination", "bool"),
    "block-device-mapping.device-name": ("device_name", "str"),
    "block-device-mapping.snapshot-id": ("snapshot_id", "str"),
    "block-device-mapping.volume-size": ("volume_size", "int"),
    "block-device-mapping.volume-type": ("volume_type", "str"),
    "block-device-mapping.encrypted": ("encrypted", "bool"),
}

#: Every supported filter name (besides ``tag:<key>``) and the kind of its values.
IMAGE_FILTERS: dict[str, FilterKind] = {
    **{n: "str" for n in _COLUMN_FILTERS},
    **{n: "bool" for n in _BOOL_COLUMN_FILTERS},
    **{n: k for n, (_, k) in _BDM_FILTERS.items()},
    "owner-alias": "str",
    "product-code": "str",
    "product-code.type": "str",
    "tag-key": "str",
    "tag-value": "str",
}


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """A DescribeImages request with every name already resolved to account ids."""

    region: str
    caller: str
    now: str
    image_ids: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    # account ids, or "all": the caller's own id finds images shared with it; another id finds
    # the caller's images shared with that account (no one learns whom others share with)
    executable_users: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    include_deprecated: bool = False
    include_disabled: bool = False
    after: str | None = None
    limit: int | None = None
    # Asked by id, the owner still sees an image deregistered after this time (EC2 describes
    # a deregistered image, state ``deregistered``, for about an hour).
    deregistered_after: str | None = None


def _bool(v: str) -> bool:
    return v.lower() == "true"


def _filter_cond(f: Filter, caller: BindParameter[str], dialect: str) -> ColumnElement[bool]:
    if f.name in _COLUMN_FILTERS:
        return match_any(getattr(IMG, _COLUMN_FILTERS[f.name]), f.values, dialect)
    if f.name in _BOOL_COLUMN_FILTERS:
        flag: InstrumentedAttribute[bool] = getattr(IMG, _BOOL_COLUMN_FILTERS[f.name])
        return flag.in_([_bool(v) for v in f.values])
    if f.name in _BDM_FILTERS:
        col_name, kind = _BDM_FILTERS[f.name]
        col = getattr(BDM, col_name)
        if kind == "bool":
            cond = col.in_([_bool(v) for v in f.values])
        elif kind == "int":
            cond = col.in_([int(v) for v in f.values])
        else:
            cond = match_any(col, f.values, dialect)
        return exists().where(BDM.image_id == IMG.image_id, cond)
    if f.name == "owner-alias":
        a = models.Account
        return exists().where(
            a.account_id == IMG.owner_id, match_any(owner_alias_column(), f.values, dialect)
        )
    if f.name in ("product-code", "product-code.type"):
        pc = models.ProductCode
        col = pc.product_code_id if f.name == "product-code" else pc.product_code_type
        return exists().where(pc.image_id == IMG.image_id, match_any(col, f.values, dialect))
    t = models.Tag
    if f.name == "tag-key":
        return exists().where(
            t.resource_id == IMG.image_id, t.owner_id == caller, match_any(t.key, f.values, dialect)
        )
    if f.name == "tag-value":
        return exists().where(
            t.resource_id == IMG.image_id,
            t.owner_id == caller,
            match_any(t.value, f.values, dialect),
        )
    if f.name.startswith("tag:"):
        return exists().where(
            t.resource_id == IMG.image_id,
            t.owner_id == caller,
            t.key == f.name[4:],
            match_any(t.value, f.values, dialect),
        )
    raise ValueError(f"unknown image filter {f.name!r}")


def _visible(caller: BindParameter[str]) -> ColumnElement[bool]:
    granted = exists().where(LP.image_id == IMG.image_id, LP.user_id == caller)
    return or_(IMG.owner_id == caller, IMG.is_public, granted)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What decides the SQL text of a query (everything else is a bind parameter)."""

    dialect: str
    owners: int
    only_own: bool  # owners == {caller}: no visibility test needed
    image_ids: int
    users: int  # account ids other than the caller's
    users_self: bool
    users_all: bool
    filters: tuple[Filter, ...]
    include_disabled: bool
    include_deprecated: bool
    after: bool
    limit: bool
    deregistered: bool


def _in(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None], prefix: str, n: int
) -> ColumnElement[bool]:
    if n == 1:
        return column == bindparam(f"{prefix}0")
    return column.in_([bindparam(f"{prefix}{i}") for i in range(n)])


@lru_cache(maxsize=512)
def _statement(shape: _Shape) -> Select[str]:
    caller = bindparam("caller", type_=IMG.owner_id.type)
    conds: list[ColumnElement[bool]] = [IMG.region == bindparam("region")]
    if shape.image_ids and shape.deregistered:
        conds.append(
            or_(
                IMG.state != "deregistered",
                and_(
                    IMG.owner_id == caller,
                    IMG.deregistered_at > bindparam("deregistered_after"),
                ),
            )
        )
    else:
        conds.append(IMG.state != "deregistered")
    if shape.owners:
        conds.append(_in(IMG.owner_id, "owner", shape.owners))
        # Owned images are always visible: only add the visibility test for other owners.
        if not shape.only_own:
            conds.append(_visible(caller))
    else:
        conds.append(_visible(caller))
    if shape.image_ids:
        conds.append(_in(IMG.image_id, "id", shape.image_ids))
    if shape.users or shape.users_self or shape.users_all:
        alts: list[ColumnElement[bool]] = []
        if shape.users_all:
            alts.append(IMG.is_public.expression)
        if shape.users_self:
            alts.append(exists().where(LP.image_id == IMG.image_id, LP.user_id == caller))
        if shape.users:
            alts.append(
                and_(
                    IMG.owner_id == caller,
                    exists().where(
                        LP.image_id == IMG.image_id, _in(LP.user_id, "user", shape.users)
                    ),
                )
            )
        conds.append(or_(*alts))
    for f in shape.filters:
        conds.append(_filter_cond(f, caller, shape.dialect))
    # Disabled images are visible to their owner only, and only when asked for.
    if shape.include_disabled or shape.image_ids:
        conds.append(or_(IMG.state != "disabled", IMG.owner_id == caller))
    else:
        conds.append(IMG.state != "disabled")
    if not shape.include_deprecated and not shape.image_ids:
        not_deprecated = or_(
            IMG.deprecation_time.is_(None), IMG.deprecation_time > bindparam("now")
        )
        conds.append(or_(not_deprecated, IMG.owner_id == caller))
    if shape.after:
        conds.append(IMG.image_id > bindparam("after"))
    stmt = select(IMG.image_id).where(and_(*conds)).order_by(IMG.image_id)
    if shape.limit:
        stmt = stmt.limit(bindparam("limit", type_=Integer))
    return stmt


def query_image_ids(tx: Session, q: ImageQuery, dialect: str) -> list[str]:
    """Ids of the images ``q.caller`` may see that match ``q``, ordered by id (one page)."""
    users = [u for u in dict.fromkeys(q.executable_users) if u not in ("all", q.caller)]
    shape = _Shape(
        dialect=dialect,
        owners=len(q.owners),
        only_own=set(q.owners) == {q.caller},
        image_ids=len(q.image_ids),
        users=len(users),
        users_self=q.caller in q.executable_users,
        users_all="all" in q.executable_users,
        filters=q.filters,
        include_disabled=q.include_disabled,
        include_deprecated=q.include_deprecated,
        after=q.after is not None,
        limit=q.limit is not None,
        deregistered=q.deregistered_after is not None,
    )
    params: dict[str, object] = {
        "region": q.region,
        "caller": q.caller,
        "now": q.now,
        "after": q.after,
        "limit": q.limit,
        "deregistered_after": q.deregistered_after,
    }
    params.update({f"owner{i}": v for i, v in enumerate(q.owners)})
    params.update({f"id{i}": v for i, v in enumerate(q.image_ids)})
    params.update({f"user{i}": v for i, v in enumerate(users)})
    return list(tx.execute(_statement(shape), params).scalars())
