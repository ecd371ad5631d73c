"""Marketplace products, subscriptions, the product codes instances carry and the metered
periods of their running time (docs/marketplace.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import ProductCodeRecord

_PRODUCT = models.MarketplaceProduct
_SUB = models.MarketplaceSubscription
_CODES = models.InstanceProductCode
_USAGE = models.MarketplaceUsage


@dataclass(frozen=True, slots=True)
class ProductRecord:
    product_id: str
    product_code: str
    vendor_id: str
    title: str
    description: str
    prices: tuple[tuple[str, str], ...]  # (instance type, USD per hour as decimal text)
    created: str


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    product_id: str
    buyer_id: str
    subscribed: str


@dataclass(frozen=True, slots=True)
class UsagePeriodRecord:
    product_id: str
    instance_id: str
    region: str
    buyer_id: str
    instance_type: str
    started: str
    ended: str | None


def _product(row: models.MarketplaceProduct) -> ProductRecord:
    return ProductRecord(
        product_id=row.product_id,
        product_code=row.product_code,
        vendor_id=row.vendor_id,
        title=row.title,
        description=row.description,
        prices=tuple(sorted((str(k), str(v)) for k, v in row.prices.items())),
        created=row.created,
    )


def insert_product(tx: Session, product: ProductRecord) -> None:
    tx.add(
        _PRODUCT(
            product_id=product.product_id,
            product_code=product.product_code,
            vendor_id=product.vendor_id,
            title=product.title,
            description=product.description,
            prices=dict(product.prices),
            created=product.created,
        )
    )
    tx.flush()


def get_product(tx: Session, product_id_or_code: str) -> ProductRecord | None:
    """The product whose id or product code is ``product_id_or_code``."""
    row = tx.scalars(
        select(_PRODUCT).where(
            or_(
                _PRODUCT.product_id == product_id_or_code,
                _PRODUCT.product_code == product_id_or_code,
            )
        )
    ).first()
    return _product(row) if row is not None else None


def products_by_code(tx: Session, codes: Iterable[str]) -> dict[str, ProductRecord]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = tx.scalars(select(_PRODUCT).where(_PRODUCT.product_code.in_(wanted)))
    return {r.product_code: _product(r) for r in rows}


def list_products(tx: Session, vendor_id: str | None = None) -> list[ProductRecord]:
    q = select(_PRODUCT).order_by(_PRODUCT.created, _PRODUCT.product_id)
    if vendor_id is not None:
        q = q.where(_PRODUCT.vendor_id == vendor_id)
    return [_product(r) for r in tx.scalars(q)]


def images_with_code(tx: Session, product_code: str) -> list[str]:
    pc = models.ProductCode
    return list(
        tx.scalars(
            select(pc.image_id).where(pc.product_code_id == product_code).order_by(pc.image_id)
        )
    )


def subscribe(tx: Session, product_id: str, buyer_id: str, now: str) -> bool:
    """True if the subscription is new (subscribing twice keeps the first)."""
    if tx.get(_SUB, (product_id, buyer_id)) is not None:
        return False
    tx.add(_SUB(product_id=product_id, buyer_id=buyer_id, subscribed=now))
    tx.flush()
    return True


def unsubscribe(tx: Session, product_id: str, buyer_id: str) -> bool:
    """True if there was a subscription to end."""
    res = tx.execute(delete(_SUB).where(_SUB.product_id == product_id, _SUB.buyer_id == buyer_id))
    return bool(res.rowcount)  # type: ignore[attr-defined]  # CursorResult


def subscriptions(tx: Session, buyer_id: str | None = None) -> list[SubscriptionRecord]:
    q = select(_SUB).order_by(_SUB.subscribed, _SUB.product_id)
    if buyer_id is not None:
        q = q.where(_SUB.buyer_id == buyer_id)
    return [SubscriptionRecord(r.product_id, r.buyer_id, r.subscribed) for r in tx.scalars(q)]


def is_subscribed(tx: Session, product_id: str, buyer_id: str) -> bool:
    return tx.get(_SUB, (product_id, buyer_id)) is not None


def add_instance_product_codes(
    tx: Session, instance_id: str, codes: Iterable[ProductCodeRecord]
) -> None:
    rows = [
        {
            "instance_id": instance_id,
            "product_code_id": c.product_code_id,
            "product_code_type": c.product_code_type,
        }
        for c in {c.product_code_id: c for c in codes}.values()
    ]
    if rows:
        tx.execute(insert(_CODES), rows)


def instance_product_codes(
    tx: Session, instance_ids: Sequence[str]
) -> dict[str, tuple[ProductCodeRecord, ...]]:
    if not instance_ids:
        return {}
    out: dict[str, list[ProductCodeRecord]] = {}
    for r in tx.scalars(
        select(_CODES)
        .where(_CODES.instance_id.in_(list(instance_ids)))
        .order_by(_CODES.instance_id, _CODES.product_code_id)
    ):
        out.setdefault(r.instance_id, []).append(
            ProductCodeRecord(r.product_code_id, r.product_code_type)
        )
    return {k: tuple(v) for k, v in out.items()}


def open_periods(
    tx: Session,
    instance_id: str,
    region: str,
    buyer_id: str,
    instance_type: str,
    product_ids: Iterable[str],
    now: str,
) -> None:
    """Start a period for each product that has none open for this instance."""
    have = set(
        tx.scalars(
            select(_USAGE.product_id).where(
                _USAGE.instance_id == instance_id, _USAGE.ended.is_(None)
            )
        )
    )
    for pid in sorted(set(product_ids) - have):
        tx.add(
            _USAGE(
                product_id=pid,
                instance_id=instance_id,
                region=region,
                buyer_id=buyer_id,
                instance_type=instance_type,
                started=now,
                ended=None,
            )
        )
    tx.flush()


def close_periods(tx: Session, instance_id: str, now: str) -> None:
    tx.execute(
        update(_USAGE)
        .where(_USAGE.instance_id == instance_id, _USAGE.ended.is_(None))
        .values(ended=now)
    )


def usage_periods(tx: Session, account_id: str | None = None) -> list[UsagePeriodRecord]:
    """Every period, or those whose buyer or product's vendor is ``account_id``."""
    q = select(_USAGE).order_by(_USAGE.id)
    if account_id is not None:
        cond: ColumnElement[bool] = or_(
            _USAGE.buyer_id == account_id,
            _USAGE.product_id.in_(
                select(_PRODUCT.product_id).where(_PRODUCT.vendor_id == account_id)
            ),
        )
        q = q.where(cond)
    return [
        UsagePeriodRecord(
            r.product_id, r.instance_id, r.region, r.buyer_id, r.instance_type, r.started, r.ended
        )
        for r in tx.scalars(q)
    ]


LINEAGE_DEPTH = 64  # parents followed at most (a cycle cannot happen; this bounds a bad row)


def snapshot_product_codes(tx: Session, snapshot_ids: Iterable[str]) -> tuple[str, ...]:
    """The marketplace product codes a snapshot carries: those of the images that map it, or a
    snapshot it was made from (``parent_snapshot_id``: CreateSnapshot, CreateImage,
    CopySnapshot), and that are owned by that snapshot's owner (no one can mark another
    account's snapshot). Sorted, without repeats."""
    S = models.Snapshot  # noqa: N806
    owners: dict[str, str] = {}
    frontier = {s for s in snapshot_ids if s}
    for _ in range(LINEAGE_DEPTH):
        frontier -= set(owners)
        if not frontier:
            break
        rows = tx.execute(
            select(S.snapshot_id, S.owner_id, S.parent_snapshot_id).where(
                S.snapshot_id.in_(sorted(frontier))
            )
        ).all()
        owners.update({r.snapshot_id: r.owner_id for r in rows})
        frontier = {r.parent_snapshot_id for r in rows if r.parent_snapshot_id}
    if not owners:
        return ()
    B, Img, P = models.BlockDeviceMapping, models.Image, models.ProductCode  # noqa: N806
    mapped = tx.execute(
        select(B.snapshot_id, Img.owner_id, P.product_code_id)
        .join(Img, Img.image_id == B.image_id)
        .join(P, P.image_id == B.image_id)
        .where(B.snapshot_id.in_(sorted(owners)), P.product_code_type == "marketplace")
    ).all()
    return tuple(
        sorted(
            {
                r.product_code_id
                for r in mapped
                if r.snapshot_id is not None and owners.get(r.snapshot_id) == r.owner_id
            }
        )
    )
