"""``kiln bake micro|debian``: build a base image from Debian packages and publish it as the public
image ``kiln/<recipe>/<version>`` of the ``kiln`` account in every region (docs/instances.md)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kiln.cli.common import (
    F,
    cli_errors,
    data_dir_option,
    emit_json,
    json_option,
    resolve_data_dir,
)
from kiln.config import BAKE_REGIONS, Settings

if TYPE_CHECKING:
    from kiln.bake.micro import BakeResult


@click.group()
def bake() -> None:
    """Base images built from installed Debian packages."""


def _services(settings: Settings):  # type: ignore[no-untyped-def]  # -> Services
    from kiln.app import build_services

    return build_services(settings, compute=None)  # baking runs no instances


def _options(fn: F) -> F:
    """The options every ``kiln bake`` recipe takes."""
    for opt in reversed(
        [
            click.option(
                "--if-missing",
                is_flag=True,
                help="Do nothing (quickly) when every region already has this version.",
            ),
            click.option(
                "--region",
                "regions",
                multiple=True,
                help=f"Region to publish in (repeatable; default: {', '.join(BAKE_REGIONS)}).",
            ),
            click.option(
                "--database-url",
                default=None,
                help="Catalog database (default: the data dir's SQLite file).",
            ),
            data_dir_option,
            json_option,
            cli_errors,
        ]
    ):
        fn = opt(fn)
    return fn


def _bake(
    recipe: str,
    version: str,
    build: Callable[[Path, Path], BakeResult],
    what: str,
    if_missing: bool,
    regions: tuple[str, ...],
    database_url: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Build with ``build(out, work_dir)`` unless every region has ``kiln/<recipe>/<version>``,
    then publish it where it is missing."""
    from kiln.services.images.base_images import existing_images, image_name, publish_base_image

    started = time.monotonic()
    settings = Settings(
        data_dir=resolve_data_dir(data_dir),
        regions=tuple(dict.fromkeys(regions)) or BAKE_REGIONS,
        database_url=database_url,
    )
    name = image_name(recipe, version)
    services = _services(settings)
    try:
        have = existing_images(services, name)
        if set(have) == set(settings.regions) and if_missing:
            rows = [
                {"Region": r, "ImageId": have[r], "Name": name, "Created": False}
                for r in settings.regions
            ]
        else:
            work = settings.data_dir / "bake" / recipe
            work.mkdir(parents=True, exist_ok=True)
            disk = work / f"{recipe}-{version}.raw"
            try:
                baked = build(disk, work)
                description = f"Kiln {recipe} {version}: {what}, kernel {baked.kernel_version}"
                published = publish_base_image(services, disk, name, description[:255])
            finally:
                shutil.rmtree(work, ignore_errors=True)
            rows = [
                {
                    "Region": p.region,
                    "ImageId": p.image_id,
                    "Name": name,
                    "SnapshotId": p.snapshot_id,
                    "Created": p.created,
                }
                for p in published
            ]
    finally:
        services.catalog.close()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        state = "published" if r["Created"] else "present"
        click.echo(f"{r['Region']}  {r['ImageId']}  {name}  {state}")
    click.echo(f"({time.monotonic() - started:.1f}s)", err=True)


@bake.command("micro")
@_options
def micro(
    if_missing: bool,
    regions: tuple[str, ...],
    database_url: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Bake the micro image (busybox + dropbear on the micro kernel `kiln bake kernel` built, else
    Debian's kernel + an initramfs; seconds, no network) and publish it as kiln/micro/<version>."""
    from kiln.bake.micro import NAME, VERSION, build_micro_image

    _bake(
        NAME,
        VERSION,
        build_micro_image,
        "busybox, dropbear; boots to KILN-READY on the serial console",
        if_missing,
        regions,
        database_url,
        data_dir,
        as_json,
    )


@bake.command("kernel")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="make -j (default: CPUs).")
@json_option
@cli_errors
def kernel(jobs: int | None, as_json: bool) -> None:
    """Build the micro image's own kernel from Debian's linux-source-6.1 (everything built in,
    no initramfs; minutes, once per host) into the cache that `kiln bake micro` uses
    (docs/bake.md#the-kernel). Nothing to do when it is built."""
    from rich.console import Console

    from kiln.bake import small_kernel

    started = time.monotonic()
    console = Console(stderr=True)
    with console.status("building the micro kernel") as status:
        built = small_kernel.build(jobs, progress=lambda step: status.update(step))
    doc = {"BzImage": str(built.bzimage), "Release": built.release}
    if as_json:
        emit_json(doc)
        return
    click.echo(f"{built.release}  {built.bzimage}")
    click.echo(f"({time.monotonic() - started:.1f}s)", err=True)


@bake.command("debian")
@click.option(
    "--mirror",
    default=None,
    help="Debian mirror (default: $KILN_DEBIAN_MIRROR, else http://deb.debian.org/debian).",
)
@_options
def debian(
    mirror: str | None,
    if_missing: bool,
    regions: tuple[str, ...],
    database_url: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Bake Debian 12 with cloud-init and OpenSSH (mmdebstrap from a Debian mirror; minutes)
    and publish it as kiln/debian/<version>. Log in as 'admin' with the key pair."""
    from kiln.bake.debian import NAME, VERSION, build_debian_image

    _bake(
        NAME,
        VERSION,
        lambda out, work: build_debian_image(out, work, mirror),
        "Debian 12 minbase, cloud-init, OpenSSH (user admin)",
        if_missing,
        regions,
        database_url,
        data_dir,
        as_json,
    )
