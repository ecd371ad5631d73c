"""Metering: instance-hours per product, buyer and instance type, from real running time.

A period opens when an instance carrying a product's code becomes ``running`` and closes when it
leaves that state (``stopping``, ``stopped``, ``shutting-down``, ``terminated``); each start
opens a new one. ``change_instance`` (kiln/services/instances/states.py) calls
:func:`meter_state_change` in the transaction that moves the instance, so a period's ends are the
moments the state changed. The vendor's own instances are not metered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from kiln.catalog import Tx
from kiln.catalog import instances as cat_instances
from kiln.catalog import marketplace as cat
from kiln.services.context import Services
from kiln.services.marketplace.access import marketplace_products


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One line of the report: seconds of running time, and their price where one is set."""

    product_id: str
    product_code: str
    title: str
    vendor_id: str
    buyer_id: str
    instance_type: str
    seconds: float
    periods: int
    running: bool  # a period of these is still open (its end is the report's time)
    usd_per_hour: str | None

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    @property
    def charge_usd(self) -> str | None:
        if self.usd_per_hour is None:
            return None
        amount = Decimal(self.usd_per_hour) * Decimal(repr(self.seconds)) / Decimal(3600)
        return format(amount.quantize(Decimal("0.000001")), "f")


def meter_state_change(tx: Tx, instance_id: str, running: bool, now: str) -> None:
    """Open the instance's periods (``running``) or close the open ones (any other state)."""
    if not running:
        cat.close_periods(tx, instance_id, now)
        return
    inst = cat_instances.get_instance(tx, instance_id, "")
    if inst is None or not inst.product_codes:
        return
    products = [
        p for p in marketplace_products(tx, inst.product_codes) if p.vendor_id != inst.owner_id
    ]
    if products:
        cat.open_periods(
            tx,
            instance_id,
            inst.region,
            inst.owner_id,
            inst.instance_type,
            [p.product_id for p in products],
            now,
        )


@dataclass(slots=True)
class _Sum:
    seconds: float = 0.0
    periods: int = 0
    running: bool = False


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def marketplace_usage(
    services: Services, account_id: str | None = None, now: datetime | None = None
) -> list[UsageLine]:
    """The usage of every product (or of those ``account_id`` sells or buys) up to ``now``,
    one line per product, buyer and instance type."""
    moment = now or datetime.now(UTC)
    with services.catalog.read() as tx:
        periods = cat.usage_periods(tx, account_id)
        products = {p.product_id: p for p in cat.list_products(tx)}
    lines: dict[tuple[str, str, str], _Sum] = {}
    for p in periods:
        end = _parse(p.ended) if p.ended else moment
        acc = lines.setdefault((p.product_id, p.buyer_id, p.instance_type), _Sum())
        acc.seconds += max(0.0, (end - _parse(p.started)).total_seconds())
        acc.periods += 1
        acc.running = acc.running or p.ended is None
    out = []
    for (pid, buyer, itype), acc in sorted(lines.items()):
        product = products[pid]
        out.append(
            UsageLine(
                product_id=pid,
                product_code=product.product_code,
                title=product.title,
                vendor_id=product.vendor_id,
                buyer_id=buyer,
                instance_type=itype,
                seconds=round(acc.seconds, 3),
                periods=acc.periods,
                running=acc.running,
                usd_per_hour=dict(product.prices).get(itype),
            )
        )
    return out
