"""``kiln instance ls | console``: the operator's view of every account's instances (works while
the server runs; reads the catalog and the run directories, changes nothing)."""

from __future__ import annotations

from pathlib import Path

import click

from kiln import errors
from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import Settings
from kiln.errors import KilnError
from kiln.runtime import layout

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)
LIVE = ("pending", "running", "stopping", "stopped", "shutting-down")


@click.group()
def instance() -> None:
    """Instances (VMs) of every account."""


@instance.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Include terminated instances.")
@data_dir_option
@database_option
@json_option
@cli_errors
def ls(show_all: bool, data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """List instances: id, account, region, state, type, image, SSH port."""
    from kiln.app import open_settings_catalog
    from kiln.catalog import instances as cat

    catalog = open_settings_catalog(
        Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    )
    try:
        with catalog.read() as tx:
            states = [*LIVE, "terminated"] if show_all else list(LIVE)
            rows = cat.instances_in_states(tx, states)
    finally:
        catalog.close()
    out = [
        {
            "InstanceId": i.instance_id,
            "OwnerId": i.owner_id,
            "Region": i.region,
            "State": i.state,
            "InstanceType": i.instance_type,
            "ImageId": i.image_id,
            "SshPort": i.ssh_port if i.state == "running" else None,
            "LaunchTime": i.launch_time,
        }
        for i in rows
    ]
    if as_json:
        emit_json(out)
        return
    for r in out:
        port = f"127.0.0.1:{r['SshPort']}" if r["SshPort"] else "-"
        click.echo(
            f"{r['InstanceId']}  {r['OwnerId']}  {r['Region']}  {r['State']:<13} "
            f"{r['InstanceType']:<10} {r['ImageId']}  {port}"
        )


@instance.command("console")
@click.argument("instance_id")
@click.option("--region", default=None, help="Region of the instance (default: searched).")
@data_dir_option
@json_option
@cli_errors
def console(instance_id: str, region: str | None, data_dir: Path | None, as_json: bool) -> None:
    """Print an instance's serial console (the current or last boot); with --json as
    {InstanceId, Region, Output}."""
    root = resolve_data_dir(data_dir)
    regions = [region] if region else layout.known_regions(root)
    for r in regions:
        log = layout.console_log_path(root, r, instance_id)
        if log.exists():
            text = log.read_bytes().decode(errors="replace")
            if as_json:
                emit_json({"InstanceId": instance_id, "Region": r, "Output": text})
            else:
                click.echo(text, nl=False)
            return
    raise KilnError(errors.InvalidInstanceIDNotFound, f"no console for {instance_id} under {root}")
