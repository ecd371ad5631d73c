"""A buyer's subscriptions: ``kiln marketplace subscribe / unsubscribe / ls --account``.

Subscribing is accepting the product's terms; it lets the buyer launch the product's images.
Unsubscribing refuses later launches; instances already running keep running, and are metered,
until they stop or terminate (as on AWS).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln import errors
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import marketplace as cat
from kiln.catalog.marketplace import ProductRecord, SubscriptionRecord
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.context import Services
from kiln.services.marketplace.products import product_of
from kiln.services.validate import ACCOUNT_RE


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    subscription: SubscriptionRecord
    product: ProductRecord


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    product: ProductRecord
    buyer_id: str
    changed: bool  # False: already subscribed / was not subscribed


def _buyer(services: Services, buyer_id: str) -> None:
    if ACCOUNT_RE.match(buyer_id):
        with services.catalog.read() as tx:
            if cat_accounts.get_account(tx, buyer_id) is not None:
                return
    raise KilnError(
        errors.InvalidParameterValue,
        f"Value ({buyer_id[:64]}) for parameter account is invalid. No such account.",
    )


def subscribe(services: Services, buyer_id: str, product: str) -> SubscriptionChange:
    """Subscribe ``buyer_id`` to the product whose id or code is ``product`` (idempotent)."""
    _buyer(services, buyer_id)
    found = product_of(services, product)
    with services.catalog.write() as tx:
        changed = cat.subscribe(tx, found.product_id, buyer_id, utc_now())
    return SubscriptionChange(found, buyer_id, changed)


def unsubscribe(services: Services, buyer_id: str, product: str) -> SubscriptionChange:
    _buyer(services, buyer_id)
    found = product_of(services, product)
    with services.catalog.write() as tx:
        changed = cat.unsubscribe(tx, found.product_id, buyer_id)
    return SubscriptionChange(found, buyer_id, changed)


def describe_subscriptions(services: Services, buyer_id: str) -> list[SubscriptionView]:
    _buyer(services, buyer_id)
    with services.catalog.read() as tx:
        subs = cat.subscriptions(tx, buyer_id)
        out = []
        for s in subs:
            p = cat.get_product(tx, s.product_id)
            if p is not None:
                out.append(SubscriptionView(s, p))
    return out
