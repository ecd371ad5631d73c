"""``kiln marketplace publish|ls|subscribe|unsubscribe|usage``: vendors' products, buyers'
subscriptions and the metered usage (docs/marketplace.md). They write the catalog directly and
work while the server runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from kiln.cli.common import (
    cli_errors,
    data_dir_option,
    emit_json,
    fail,
    json_option,
    resolve_data_dir,
)
from kiln.config import DEFAULT_REGION, Settings
from kiln.services.context import Caller, Services

if TYPE_CHECKING:
    from kiln.services.marketplace.metering import UsageLine
    from kiln.services.marketplace.products import ProductView
    from kiln.services.marketplace.subscriptions import SubscriptionChange, SubscriptionView

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)


@contextmanager
def _services(data_dir: Path | None, database_url: str | None) -> Iterator[Services]:
    from kiln.app import build_services

    settings = Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    services = build_services(settings, compute=None)
    try:
        yield services
    finally:
        services.catalog.close()


def _console() -> Console:
    return Console(soft_wrap=False, width=200)


def product_json(v: ProductView) -> dict[str, Any]:
    p = v.product
    return {
        "ProductId": p.product_id,
        "ProductCode": p.product_code,
        "ProductCodeType": "marketplace",
        "VendorId": p.vendor_id,
        "Title": p.title,
        "Description": p.description,
        "Prices": [{"InstanceType": t, "UsdPerHour": usd} for t, usd in p.prices],
        "ImageIds": list(v.image_ids),
        "Created": p.created,
    }


def usage_json(u: UsageLine) -> dict[str, Any]:
    return {
        "ProductId": u.product_id,
        "ProductCode": u.product_code,
        "Title": u.title,
        "VendorId": u.vendor_id,
        "BuyerId": u.buyer_id,
        "InstanceType": u.instance_type,
        "Hours": round(u.hours, 6),
        "Seconds": u.seconds,
        "Periods": u.periods,
        "Running": u.running,
        "UsdPerHour": u.usd_per_hour,
        "ChargeUsd": u.charge_usd,
    }


def _split_price(text: str) -> tuple[str, str]:
    itype, sep, usd = text.partition("=")
    if not sep or not itype.strip():
        fail(
            f"InvalidParameterValue: Value ({text[:64]}) for parameter price is invalid. "
            "Expected TYPE=USD_PER_HOUR, e.g. t3.micro=0.05."
        )
    return itype.strip(), usd


@click.group()
def marketplace() -> None:
    """Marketplace products: a vendor publishes its images with a product code and hourly
    prices; buyers subscribe before they launch; running time is metered."""


@marketplace.command("publish")
@click.option("--account", "account_id", required=True, help="The vendor's account id.")
@click.option(
    "--image", "image_ids", multiple=True, required=True, help="A vendor's image (repeat)."
)
@click.option("--title", required=True, help="The product's title.")
@click.option("--description", default="", help="The product's description.")
@click.option(
    "--price",
    "prices",
    multiple=True,
    required=True,
    help="TYPE=USD_PER_HOUR, the hourly price of an instance type (repeat).",
)
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The images' region.")
@data_dir_option
@database_option
@json_option
@cli_errors
def publish(
    account_id: str,
    image_ids: tuple[str, ...],
    title: str,
    description: str,
    prices: tuple[str, ...],
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Publish a product: its product code is attached to the images (productCodes)."""
    from kiln.services.marketplace.products import PublishProductRequest, publish_product

    req = PublishProductRequest(
        image_ids=image_ids,
        title=title,
        description=description,
        prices=tuple(_split_price(p) for p in prices),
    )
    with _services(data_dir, database_url) as services:
        view = publish_product(services, Caller(account_id, region), req)
    if as_json:
        emit_json(product_json(view))
    else:
        p = view.product
        click.echo(
            f"published {p.product_id} (product code {p.product_code}) on "
            f"{', '.join(view.image_ids)}"
        )


@marketplace.command("ls")
@click.option(
    "--account", "account_id", default=None, help="List this buyer's subscriptions instead."
)
@data_dir_option
@database_option
@json_option
@cli_errors
def ls(
    account_id: str | None, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """The products; with --account, that buyer's subscriptions."""
    from kiln.services.marketplace.products import describe_products
    from kiln.services.marketplace.subscriptions import describe_subscriptions

    with _services(data_dir, database_url) as services:
        if account_id is not None:
            subs = describe_subscriptions(services, account_id)
            products = []
        else:
            subs = []
            products = describe_products(services)
    if account_id is not None:
        _print_subscriptions(subs, as_json)
        return
    if as_json:
        emit_json([product_json(v) for v in products])
        return
    table = Table(title="marketplace products")
    for column in ("Product", "Code", "Vendor", "Title", "Prices (USD/hour)", "Images"):
        table.add_column(column)
    for v in products:
        p = v.product
        table.add_row(
            p.product_id,
            p.product_code,
            p.vendor_id,
            p.title,
            ", ".join(f"{t}={usd}" for t, usd in p.prices),
            ", ".join(v.image_ids),
        )
    _console().print(table)


def _print_subscriptions(subs: list[SubscriptionView], as_json: bool) -> None:
    if as_json:
        emit_json(
            [
                {
                    "ProductId": s.product.product_id,
                    "ProductCode": s.product.product_code,
                    "Title": s.product.title,
                    "VendorId": s.product.vendor_id,
                    "BuyerId": s.subscription.buyer_id,
                    "Subscribed": s.subscription.subscribed,
                }
                for s in subs
            ]
        )
        return
    table = Table(title="marketplace subscriptions")
    for column in ("Product", "Code", "Title", "Vendor", "Subscribed"):
        table.add_column(column)
    for s in subs:
        p = s.product
        table.add_row(p.product_id, p.product_code, p.title, p.vendor_id, s.subscription.subscribed)
    _console().print(table)


def _print_change(change: SubscriptionChange, verb: str, as_json: bool) -> None:
    p = change.product
    if as_json:
        emit_json(
            {
                "ProductId": p.product_id,
                "ProductCode": p.product_code,
                "BuyerId": change.buyer_id,
                "Changed": change.changed,
            }
        )
    elif change.changed:
        click.echo(f"{change.buyer_id} {verb} {p.product_id} ({p.title})")
    else:
        click.echo(f"{change.buyer_id}: nothing to do for {p.product_id} ({p.title})")


@marketplace.command("subscribe")
@click.argument("product")
@click.option("--account", "account_id", required=True, help="The buyer's account id.")
@data_dir_option
@database_option
@json_option
@cli_errors
def subscribe(
    product: str,
    account_id: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Subscribe the buyer to PRODUCT (its id or product code): its images then launch."""
    from kiln.services.marketplace.subscriptions import subscribe as rule

    with _services(data_dir, database_url) as services:
        change = rule(services, account_id, product)
    _print_change(change, "subscribed to", as_json)


@marketplace.command("unsubscribe")
@click.argument("product")
@click.option("--account", "account_id", required=True, help="The buyer's account id.")
@data_dir_option
@database_option
@json_option
@cli_errors
def unsubscribe(
    product: str,
    account_id: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """End the buyer's subscription to PRODUCT: new launches are refused (OptInRequired)."""
    from kiln.services.marketplace.subscriptions import unsubscribe as rule

    with _services(data_dir, database_url) as services:
        change = rule(services, account_id, product)
    _print_change(change, "unsubscribed from", as_json)


@marketplace.command("usage")
@click.option(
    "--account", "account_id", default=None, help="Only products this vendor sells or buyer uses."
)
@data_dir_option
@database_option
@json_option
@cli_errors
def usage(
    account_id: str | None, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Instance-hours per product, buyer and instance type, from real running time."""
    from kiln.services.marketplace.metering import marketplace_usage

    with _services(data_dir, database_url) as services:
        lines = marketplace_usage(services, account_id)
    if as_json:
        emit_json({"Usage": [usage_json(u) for u in lines]})
        return
    table = Table(title="marketplace usage")
    for column in ("Product", "Buyer", "Instance type", "Hours", "Seconds", "USD/hour", "Charge"):
        table.add_column(column)
    for u in lines:
        table.add_row(
            f"{u.product_id} ({u.title})",
            u.buyer_id,
            u.instance_type,
            f"{u.hours:.6f}",
            f"{u.seconds:.3f}" + (" (running)" if u.running else ""),
            u.usd_per_hour or "",
            u.charge_usd or "",
        )
    _console().print(table)
