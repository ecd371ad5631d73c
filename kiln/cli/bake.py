"""``kiln bake micro``: build the base image from Debian packages and publish it as the public
image ``kiln/micro/<version>`` of the ``kiln`` account in every region (docs/instances.md)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import DEFAULT_REGIONS, Settings


@click.group()
def bake() -> None:
    """Base images built from installed Debian packages."""


def _services(settings: Settings):  # type: ignore[no-untyped-def]  # -> Services
    from kiln.app import open_settings_catalog
    from kiln.services.context import Services
    from kiln.services.jobs import JobRunner
    from kiln.store import open_store

    return Services(catalog=open_settings_catalog(settings),
                    stores={r: open_store(settings.store_dir(r)) for r in settings.regions},
                    jobs=JobRunner(), data_dir=settings.data_dir, regions=settings.regions)


@bake.command("micro")
@click.option("--if-missing", is_flag=True,
              help="Do nothing (quickly) when every region already has this version.")
@click.option("--region", "regions", multiple=True,
              help=f"Region to publish in (repeatable; default: {', '.join(DEFAULT_REGIONS)}).")
@click.option("--database-url", default=None,
              help="Catalog database (default: the data dir's SQLite file).")
@data_dir_option
@json_option
@cli_errors
def micro(if_missing: bool, regions: tuple[str, ...], database_url: str | None,
          data_dir: Path | None, as_json: bool) -> None:
    """Bake the micro image (busybox + dropbear on Debian's kernel) and publish it."""
    from kiln.bake.micro import NAME, VERSION, build_micro_image
    from kiln.services.base_images import existing_images, image_name, publish_base_image

    started = time.monotonic()
    settings = Settings(data_dir=resolve_data_dir(data_dir),
                        regions=tuple(dict.fromkeys(regions)) or DEFAULT_REGIONS,
                        database_url=database_url)
    name = image_name(NAME, VERSION)
    services = _services(settings)
    try:
        have = existing_images(services, name)
        if if_missing and set(have) == set(settings.regions):
            rows = [{"Region": r, "ImageId": have[r], "Name": name, "Created": False}
                    for r in settings.regions]
        else:
            work = settings.data_dir / "bake"
            work.mkdir(parents=True, exist_ok=True)
            disk = work / f"{NAME}-{VERSION}.raw"
            try:
                baked = build_micro_image(disk, work)
                description = (f"Kiln {NAME} {VERSION}: busybox, dropbear, Debian kernel "
                               f"{baked.kernel_version}; boots to KILN-READY on the serial console")
                published = publish_base_image(services, disk, name, description)
            finally:
                disk.unlink(missing_ok=True)
                shutil.rmtree(work, ignore_errors=True)
            rows = [{"Region": p.region, "ImageId": p.image_id, "Name": name,
                     "SnapshotId": p.snapshot_id, "Created": p.created} for p in published]
    finally:
        services.catalog.close()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        state = "published" if r["Created"] else "present"
        click.echo(f"{r['Region']}  {r['ImageId']}  {name}  {state}")
    click.echo(f"({time.monotonic() - started:.1f}s)", err=True)
