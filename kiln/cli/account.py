"""``kiln account create|ls``: accounts and access keys (works while the server runs).

Both print JSON whether or not ``--json`` is given (it is accepted, as by every command).
"""

from __future__ import annotations

from pathlib import Path

import click

from kiln.cli.common import (
    cli_errors,
    data_dir_option,
    emit_json,
    json_option,
    resolve_data_dir,
)
from kiln.config import Settings

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)


def _catalog(data_dir: Path | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from kiln.app import open_settings_catalog

    settings = Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    return open_settings_catalog(settings)


@click.group()
def account() -> None:
    """Accounts (12-digit ids) and their access keys."""


@account.command("create")
@click.option("--name", required=True, help="A name for the account.")
@click.option("--account-id", help="12-digit id (default: a new random one).")
@click.option("--access-key-id", help="Access key id to use (with --secret-access-key).")
@click.option("--secret-access-key", help="Secret access key to use (with --access-key-id).")
@data_dir_option
@database_option
@json_option
@cli_errors
def create(
    name: str,
    account_id: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Create an account with one access key; print {AccountId, AccessKeyId, SecretAccessKey}
    as JSON (with or without --json)."""
    from kiln.services.accounts.accounts import create_account

    catalog = _catalog(data_dir, database_url)
    try:
        res = create_account(catalog, name, account_id, access_key_id, secret_access_key)
    finally:
        catalog.close()
    emit_json(
        {
            "AccountId": res.account_id,
            "AccessKeyId": res.access_key_id,
            "SecretAccessKey": res.secret_access_key,
        }
    )


@account.command("ls")
@data_dir_option
@database_option
@json_option
@cli_errors
def ls(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """List accounts as JSON (with or without --json)."""
    from kiln.catalog.accounts import list_accounts

    catalog = _catalog(data_dir, database_url)
    try:
        with catalog.read() as tx:
            rows = list_accounts(tx)
    finally:
        catalog.close()
    emit_json([{"AccountId": a.account_id, "Name": a.name, "Alias": a.alias} for a in rows])


@account.command("quota")
@click.argument("account_id")
@click.option("--images", metavar="N", help="Most images per region (a whole number or 'none').")
@click.option("--snapshots", metavar="N", help="Most snapshots per region ('none': no limit).")
@click.option(
    "--public-images", metavar="N", help="Most public images per region ('none': no limit)."
)
@click.option(
    "--shares-per-image",
    metavar="N",
    help="Most accounts one image is shared with ('none': no limit).",
)
@data_dir_option
@database_option
@json_option
@cli_errors
def quota(
    account_id: str,
    images: str | None,
    snapshots: str | None,
    public_images: str | None,
    shares_per_image: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Show or set ACCOUNT_ID's quotas (docs/quotas.md): with no option, print them; each
    option sets one limit (applied in every region), 'none' lifts it. A refused value changes
    nothing."""
    from kiln.services.accounts.quotas import QuotaChange, account_quota, set_account_quota

    given = {
        "images": images,
        "snapshots": snapshots,
        "public-images": public_images,
        "shares-per-image": shares_per_image,
    }
    changes = tuple(QuotaChange(k, v) for k, v in given.items() if v is not None)
    catalog = _catalog(data_dir, database_url)
    try:
        record = (
            set_account_quota(catalog, account_id, changes)
            if changes
            else account_quota(catalog, account_id)
        )
    finally:
        catalog.close()
    limits = {
        "images": record.images,
        "snapshots": record.snapshots,
        "public-images": record.public_images,
        "shares-per-image": record.shares_per_image,
    }
    if as_json:
        emit_json({"AccountId": account_id, "Quotas": limits})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("quota", "limit", title=f"account {account_id}")
    for name, limit in limits.items():
        table.add_row(name, "none" if limit is None else str(limit))
    Console().print(table)
