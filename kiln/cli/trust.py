"""``kiln trust add|ls|rm|require``: the operator's trusted signing keys and each region's
signing policy (docs/signing.md#the-region-policy). They work while the server runs; the next
RunInstances or CopyImage reads them."""

from __future__ import annotations

from pathlib import Path

import click

from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option
from kiln.cli.image import cli_services, database_option
from kiln.config import DEFAULT_REGION

region_option = click.option(
    "--region", default=DEFAULT_REGION, show_default=True, help="The region the key is trusted in."
)


@click.group()
def trust() -> None:
    """Trusted ed25519 keys for image signatures, and whether a region requires them."""


@trust.command()
@click.argument("public_key", metavar="PUBKEYFILE", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--comment", default=None, help="A note shown by kiln trust ls (at most 256).")
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def add(
    public_key: Path,
    comment: str | None,
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Trust the public key in PUBKEYFILE (PEM or an ssh-ed25519 line) in the region."""
    from kiln.services.images.signing import add_trusted_key

    with cli_services(data_dir, database_url) as services:
        key = add_trusted_key(services, region, public_key.read_bytes(), str(public_key), comment)
    if as_json:
        emit_json({"KeyId": key.key_id, "Region": key.region, "Comment": key.comment})
    else:
        click.echo(f"{key.key_id} trusted in {key.region}")


@trust.command("ls")
@click.option("--region", default=None, help="Only this region's keys (default: every region).")
@data_dir_option
@database_option
@json_option
@cli_errors
def ls(region: str | None, data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """The trusted keys, and which regions require signatures."""
    from kiln.services.images.signing import list_trusted_keys, signature_required

    with cli_services(data_dir, database_url) as services:
        keys = list_trusted_keys(services, region)
        required = {k.region: signature_required(services, k.region) for k in keys}
        if region is not None:
            required[region] = signature_required(services, region)
    if as_json:
        emit_json(
            {
                "Keys": [
                    {
                        "KeyId": k.key_id,
                        "Region": k.region,
                        "Comment": k.comment,
                        "Added": k.added,
                    }
                    for k in keys
                ],
                "SignatureRequired": required,
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("region", "comment", "added", "required")
    table.add_column("key id", no_wrap=True, min_width=40)  # ids are copied into kiln trust rm
    for k in keys:
        table.add_row(
            k.region, k.comment or "", k.added, "yes" if required[k.region] else "no", k.key_id
        )
    Console(width=max(Console().width, 132)).print(table)


@trust.command()
@click.argument("key", metavar="KEY_ID|PUBKEYFILE")
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def rm(
    key: str, region: str, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Stop trusting a key (its id, or its public key file) in the region."""
    from kiln.services.images.signing import remove_trusted_key

    text = key if key.startswith("ed25519:") else Path(key).read_text()
    with cli_services(data_dir, database_url) as services:
        kid = remove_trusted_key(services, region, text)
    if as_json:
        emit_json({"KeyId": kid, "Region": region, "Removed": True})
    else:
        click.echo(f"{kid} no longer trusted in {region}")


@trust.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def require(
    state: str, region: str, data_dir: Path | None, database_url: str | None, as_json: bool
) -> None:
    """on: RunInstances and CopyImage into the region need a valid signature by a trusted key."""
    from kiln.services.images.signing import set_signature_required

    with cli_services(data_dir, database_url) as services:
        set_signature_required(services, region, state == "on")
    if as_json:
        emit_json({"Region": region, "SignatureRequired": state == "on"})
    else:
        click.echo(f"{region}: signatures {'required' if state == 'on' else 'not required'}")
