"""``kiln lifecycle apply|run|list|delete``: Image Builder's lifecycle policies for an account's
images (docs/lifecycle.md). They work while the server runs; they write the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import DEFAULT_REGION, Settings
from kiln.services.context import Caller, Services

if TYPE_CHECKING:
    from kiln.services.lifecycle.runs import PolicyRun

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


@click.group()
def lifecycle() -> None:
    """Lifecycle policies: deprecate, disable and delete an account's images of a family by
    age or count (Image Builder's CreateLifecyclePolicy document, JSON or YAML)."""


@lifecycle.command("apply")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--account", "account_id", required=True, help="The policy's account id.")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The policy's region.")
@data_dir_option
@database_option
@json_option
@cli_errors
def apply(
    file: Path,
    account_id: str,
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Create the policy FILE describes, or replace the account's policy of that name."""
    from kiln.services.lifecycle.policies import apply_lifecycle_policy

    text = file.read_text(encoding="utf-8")
    with _services(data_dir, database_url) as services:
        done = apply_lifecycle_policy(services, Caller(account_id, region), text)
    p = done.policy
    if as_json:
        emit_json(
            {
                "Name": p.name,
                "LifecyclePolicyArn": p.arn,
                "AccountId": p.account_id,
                "Region": p.region,
                "Status": p.status,
                "Created": done.created,
            }
        )
    else:
        click.echo(f"{'created' if done.created else 'replaced'} {p.name} ({p.arn})")


@lifecycle.command("run")
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option("--account", "account_id", default=None, help="Only this account's policies.")
@click.option("--region", default=None, help="Only this region's policies.")
@click.option("--name", default=None, help="Only the policy of this name.")
@data_dir_option
@database_option
@json_option
@cli_errors
def run(
    dry_run: bool,
    account_id: str | None,
    region: str | None,
    name: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Run the enabled policies once, now (each image's action, or with --dry-run the plan)."""
    from kiln.services.lifecycle.runs import run_lifecycle_policies

    with _services(data_dir, database_url) as services:
        runs = run_lifecycle_policies(
            services, dry_run=dry_run, account_id=account_id, region=region, name=name
        )
    if as_json:
        emit_json(
            {
                "DryRun": dry_run,
                "Policies": [
                    {
                        "Policy": r.policy,
                        "AccountId": r.account_id,
                        "Region": r.region,
                        "StartedAt": r.started,
                        "NotRun": r.not_run,
                        "Actions": [a.as_json() for a in r.actions],
                    }
                    for r in runs
                ],
            }
        )
        return
    _print_runs(runs, dry_run)


def _print_runs(runs: list[PolicyRun], dry_run: bool) -> None:
    console = Console(soft_wrap=False, width=200)
    title = "lifecycle run (dry run: nothing changed)" if dry_run else "lifecycle run"
    table = Table(title=title)
    for column in ("Policy", "Account", "Region", "Image", "Name", "Created", "Action", "Result"):
        table.add_column(column)
    for r in runs:
        if r.not_run:
            table.add_row(r.policy, r.account_id, r.region, "", "", "", "", r.not_run)
        for a in r.actions:
            outcome = a.result + (f" ({a.reason})" if a.reason else "")
            if a.snapshots_deleted:
                outcome += f"; deleted {', '.join(a.snapshots_deleted)}"
            table.add_row(
                a.policy,
                a.account_id,
                a.region,
                a.image_id,
                a.image_name,
                a.creation_date,
                a.action,
                outcome,
            )
    console.print(table)
    total = sum(len(r.actions) for r in runs)
    console.print(f"{len(runs)} polic{'y' if len(runs) == 1 else 'ies'}, {total} action(s)")


@lifecycle.command("list")
@click.option("--account", "account_id", default=None, help="Only this account's policies.")
@click.option("--region", default=None, help="Only this region's policies.")
@data_dir_option
@database_option
@json_option
@cli_errors
def list_(
    account_id: str | None,
    region: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """The policies, their status and their last run."""
    from kiln.services.lifecycle.policies import list_lifecycle_policies

    with _services(data_dir, database_url) as services:
        found = list_lifecycle_policies(services, account_id, region)
    if as_json:
        emit_json(
            [
                {
                    "Name": p.name,
                    "LifecyclePolicyArn": p.arn,
                    "AccountId": p.account_id,
                    "Region": p.region,
                    "Status": p.status,
                    "Policy": {**p.document, **_extension(p.document, p.selection)},
                    "LastRunAt": p.last_run_at,
                    "LastRun": p.last_run,
                }
                for p in found
            ]
        )
        return
    for p in found:
        last = p.last_run_at or "never run"
        click.echo(f"{p.account_id}\t{p.region}\t{p.name}\t{p.status}\t{last}")


def _extension(document: dict[str, object], selection: dict[str, object]) -> dict[str, object]:
    """The document's resourceSelection with Kiln's extension put back (as it was applied)."""
    if not selection:
        return {}
    given = document.get("resourceSelection")
    return {"resourceSelection": {**(given if isinstance(given, dict) else {}), **selection}}


@lifecycle.command("delete")
@click.argument("name")
@click.option("--account", "account_id", required=True, help="The policy's account id.")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The policy's region.")
@data_dir_option
@database_option
@json_option
@cli_errors
def delete(
    name: str,
    account_id: str,
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Delete the account's policy NAME in the region (its images are left as they are)."""
    from kiln.services.lifecycle.policies import delete_lifecycle_policy

    with _services(data_dir, database_url) as services:
        delete_lifecycle_policy(services, Caller(account_id, region), name)
    if as_json:
        emit_json({"Name": name, "AccountId": account_id, "Region": region, "Deleted": True})
    else:
        click.echo(f"deleted {name} ({account_id}, {region})")
