"""``kiln alias set|list|delete``: image ids that stand for an image or a family's newest image
(docs/aliases.md), and ``kiln parameter map|unmap|maps``: AWS's public SSM parameter names
answered with a family's newest image (docs/ssm.md#public-parameters). Both work while the
server runs; they write the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import DEFAULT_REGION, Settings
from kiln.services.context import Services

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)
region_option = click.option(
    "--region", default=DEFAULT_REGION, show_default=True, help="The alias's region."
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
def alias() -> None:
    """Image aliases: an image id (ami-0123456789abcdef0) that stands for another image or for
    the newest image of a family (kiln/debian), per region, for every account."""


@alias.command("set")
@click.argument("alias_id", metavar="ALIAS")
@click.argument("target")
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def set_(
    alias_id: str,
    target: str,
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Make ALIAS (an image id) stand for TARGET (an image id of the region, or a family)."""
    from kiln.services.images.aliases import set_alias

    with _services(data_dir, database_url) as services:
        made = set_alias(services, region, alias_id, target)
    if as_json:
        emit_json({"Alias": made.alias, "Target": made.target, "Region": made.region})
    else:
        click.echo(f"{made.alias} -> {made.target} ({made.region})")


@alias.command("list")
@click.option("--region", default=None, help="Only this region's aliases (default: every one).")
@data_dir_option
@database_option
@json_option
@cli_errors
def list_(
    region: str | None, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """The aliases, their targets and the image each resolves to now."""
    from kiln.services.images.aliases import list_aliases

    with _services(data_dir, database_url) as services:
        views = list_aliases(services, region)
    if as_json:
        emit_json(
            [
                {
                    "Alias": v.alias,
                    "Target": v.target,
                    "Region": v.region,
                    "ImageId": v.resolves_to,
                    "Created": v.created,
                }
                for v in views
            ]
        )
        return
    for v in views:
        click.echo(f"{v.region}\t{v.alias}\t{v.target}\t{v.resolves_to or '(nothing)'}")


@alias.command("delete")
@click.argument("alias_id", metavar="ALIAS")
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def delete(
    alias_id: str, region: str, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Delete ALIAS in the region."""
    from kiln.services.images.aliases import delete_alias

    with _services(data_dir, database_url) as services:
        delete_alias(services, region, alias_id)
    if as_json:
        emit_json({"Alias": alias_id, "Region": region, "Deleted": True})
    else:
        click.echo(f"deleted {alias_id} ({region})")


@click.group()
def parameter() -> None:
    """Public SSM parameters: map AWS's names (/aws/service/…) to an image family."""


@parameter.command("map")
@click.argument("name")
@click.argument("family")
@data_dir_option
@database_option
@json_option
@cli_errors
def map_(
    name: str, family: str, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Answer the public parameter NAME (under /aws/) with FAMILY's newest image."""
    from kiln.services.parameters.public_maps import map_parameter

    with _services(data_dir, database_url) as services:
        made = map_parameter(services, name, family)
    if as_json:
        emit_json({"Name": made.name, "Family": made.family})
    else:
        click.echo(f"{made.name} -> {made.family}")


@parameter.command("unmap")
@click.argument("name")
@data_dir_option
@database_option
@json_option
@cli_errors
def unmap(name: str, data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Remove the map of NAME."""
    from kiln.services.parameters.public_maps import unmap_parameter

    with _services(data_dir, database_url) as services:
        unmap_parameter(services, name)
    if as_json:
        emit_json({"Name": name, "Deleted": True})
    else:
        click.echo(f"unmapped {name}")


@parameter.command("maps")
@data_dir_option
@database_option
@json_option
@cli_errors
def maps(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """The mapped names, their families and the image each answers with per region."""
    from kiln.services.parameters.public_maps import mapped_parameters

    with _services(data_dir, database_url) as services:
        found = mapped_parameters(services)
    if as_json:
        emit_json([{"Name": m.name, "Family": m.family, "Images": m.images} for m in found])
        return
    for m in found:
        images = " ".join(f"{r}={i}" for r, i in sorted(m.images.items())) or "(no image)"
        click.echo(f"{m.name}\t{m.family}\t{images}")
