"""``kiln image sign|verify|keygen``: an owner's ed25519 signature of an image and its check
(docs/signing.md). They work while the server runs: they read the catalog and the region's
store, and ``sign`` writes the signature to the catalog."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from kiln import errors
from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import DEFAULT_REGION, Settings
from kiln.errors import KilnError
from kiln.services.context import Services

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)
region_option = click.option(
    "--region", default=DEFAULT_REGION, show_default=True, help="The image's region."
)


@contextmanager
def cli_services(data_dir: Path | None, database_url: str | None) -> Iterator[Services]:
    from kiln.app import build_services

    settings = Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    services = build_services(settings, compute=None)
    try:
        yield services
    finally:
        services.catalog.close()


def key_files(path: Path) -> list[tuple[str, bytes]]:
    """A public key file, or every ``*.pub`` and ``*.pem`` file of a directory."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".pub", ".pem") and p.is_file())
        if not found:
            raise KilnError(errors.InvalidParameterValue, f"{path} holds no *.pub or *.pem key")
        return [(str(p), p.read_bytes()) for p in found]
    return [(str(path), path.read_bytes())]


@click.group()
def image() -> None:
    """Image signatures: sign an image you own with an ed25519 key, verify it against trusted
    keys (docs/signing.md)."""


@image.command()
@click.argument("image_id", metavar="IMAGE")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="ed25519 private key: PEM PKCS#8 (openssl genpkey -algorithm ed25519) or OpenSSH.",
)
@click.option("--account", default=None, help="The owner signing (default: the image's owner).")
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def sign(
    image_id: str,
    key_file: Path,
    account: str | None,
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Sign IMAGE: its launch-relevant fields and every manifest it launches from."""
    from kiln.services.images.signing import sign_image

    with cli_services(data_dir, database_url) as services:
        sig = sign_image(services, region, image_id, key_file.read_bytes(), str(key_file), account)
    if as_json:
        emit_json(
            {
                "ImageId": sig.image_id,
                "Region": sig.region,
                "KeyId": sig.key_id,
                "Digest": sig.digest,
                "SignedBy": sig.signed_by,
                "SignedAt": sig.signed_at,
            }
        )
    else:
        click.echo(f"{sig.image_id} signed with {sig.key_id} (digest sha256:{sig.digest})")


@image.command()
@click.argument("image_id", metavar="IMAGE")
@click.option(
    "--trusted-keys",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Trust these public keys (a file, or a directory of *.pub/*.pem) instead of the "
    "region's (kiln trust).",
)
@region_option
@data_dir_option
@database_option
@json_option
@cli_errors
def verify(
    image_id: str,
    trusted_keys: Path | None,
    region: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Verify IMAGE's signature: exit 0 if it is valid and by a trusted key, 1 otherwise."""
    from kiln.services.images.signing import verify_image

    given = key_files(trusted_keys) if trusted_keys is not None else None
    with cli_services(data_dir, database_url) as services:
        got = verify_image(services, region, image_id, given)
    if as_json:
        emit_json(
            {
                "ImageId": got.image_id,
                "Region": got.region,
                "Valid": got.valid,
                "Reason": got.reason,
                "KeyId": got.key_id,
                "Trusted": got.trusted,
                "SignedBy": got.signed_by,
                "SignedAt": got.signed_at,
                "Digest": got.digest,
            }
        )
    elif got.valid:
        click.echo(f"valid: {got.reason}")
    else:
        click.echo(f"invalid: {got.reason}", err=True)
    if not got.valid:
        sys.exit(1)


@image.command()
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@json_option
@cli_errors
def keygen(out: Path, as_json: bool) -> None:
    """Make an ed25519 key pair: OUT (the private key, mode 0600) and OUT.pub."""
    from kiln.services.images.signing_keys import generate_key

    pub = out.with_name(out.name + ".pub")
    for path in (out, pub):
        if path.exists():
            raise KilnError(errors.InvalidParameterValue, f"{path} exists; not overwriting it")
    made = generate_key()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(made.private_pem)
    pub.write_bytes(made.public_pem)
    if as_json:
        emit_json({"PrivateKey": str(out), "PublicKey": str(pub), "KeyId": made.key_id})
    else:
        click.echo(f"{made.key_id}: {out} (private), {pub} (public)")
