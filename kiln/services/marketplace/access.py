"""Who may launch an image carrying a marketplace product code: the product's vendor, and the
accounts subscribed to the product. Everyone else gets EC2's OptInRequired (HTTP 401) with
AWS's message naming the code. A product code no published product has (one added with
ModifyImageAttribute) asks for no subscription."""

from __future__ import annotations

from collections.abc import Iterable

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import marketplace as cat
from kiln.catalog.marketplace import ProductRecord
from kiln.catalog.records import ProductCodeRecord
from kiln.errors import KilnError

OPT_IN_URL = "https://aws.amazon.com/marketplace/pp?sku="


def marketplace_products(tx: Tx, codes: Iterable[ProductCodeRecord]) -> list[ProductRecord]:
    """The published products behind ``codes`` (those of type marketplace), by code."""
    found = cat.products_by_code(
        tx, (c.product_code_id for c in codes if c.product_code_type == "marketplace")
    )
    return [found[k] for k in sorted(found)]


def opt_in_required(product_code: str) -> KilnError:
    return KilnError(
        errors.OptInRequired,
        "In order to use this AWS Marketplace product you need to accept terms and subscribe. "
        f"To do so please visit {OPT_IN_URL}{product_code}",
    )


def require_subscriptions(tx: Tx, account_id: str, codes: Iterable[ProductCodeRecord]) -> None:
    """OptInRequired unless ``account_id`` is the vendor of, or subscribed to, every product."""
    for product in marketplace_products(tx, codes):
        if product.vendor_id != account_id and not cat.is_subscribed(
            tx, product.product_id, account_id
        ):
            raise opt_in_required(product.product_code)


def foreign_marketplace_code(
    tx: Tx, account_id: str, codes: Iterable[ProductCodeRecord]
) -> ProductRecord | None:
    """A product behind ``codes`` whose vendor is not ``account_id`` (the first), or None."""
    for product in marketplace_products(tx, codes):
        if product.vendor_id != account_id:
            return product
    return None
