"""``kiln bucket create|ls``: buckets (the directories imports read and exports write)."""

from __future__ import annotations

from pathlib import Path

import click

from kiln.cli.account import database_option
from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import Settings
from kiln.runtime import layout


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    return Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)


@click.group()
def bucket() -> None:
    """Buckets: each belongs to one account; only it imports from or exports to it."""


@bucket.command("create")
@click.argument("name")
@click.option("--account", "account_id", required=True, help="The 12-digit owner account.")
@data_dir_option
@database_option
@json_option
@cli_errors
def create(
    name: str, account_id: str, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Create bucket NAME for an account (DATA_DIR/buckets/NAME)."""
    from kiln import errors
    from kiln.app import open_settings_catalog
    from kiln.catalog.accounts import get_account
    from kiln.errors import KilnError
    from kiln.services.tasks.buckets import make_bucket

    settings = _settings(data_dir, database_url)
    catalog = open_settings_catalog(settings)
    try:
        with catalog.read() as tx:
            if get_account(tx, account_id) is None:
                raise KilnError(errors.InvalidParameterValue, f"no account {account_id}")
        record = make_bucket(catalog, settings.data_dir, account_id, name)
    finally:
        catalog.close()
    out = {
        "Bucket": record.name,
        "Owner": record.owner_id,
        "Created": record.created,
        "Path": str(layout.buckets_dir(settings.data_dir) / record.name),
    }
    if as_json:
        emit_json(out)
    else:
        click.echo(f"{record.name} (owner {record.owner_id}): {out['Path']}")


@bucket.command("ls")
@click.option("--account", "account_id", default=None, help="Only this account's buckets.")
@data_dir_option
@database_option
@json_option
@cli_errors
def ls(
    account_id: str | None, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """List buckets and their owners."""
    from kiln.app import open_settings_catalog
    from kiln.catalog.buckets import list_buckets

    catalog = open_settings_catalog(_settings(data_dir, database_url))
    try:
        with catalog.read() as tx:
            rows = list_buckets(tx, account_id)
    finally:
        catalog.close()
    if as_json:
        emit_json([{"Bucket": b.name, "Owner": b.owner_id, "Created": b.created} for b in rows])
    else:
        for b in rows:
            click.echo(f"{b.name}\t{b.owner_id}\t{b.created}")
