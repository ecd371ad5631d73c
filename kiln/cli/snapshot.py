"""``kiln snapshot import | ls | export``: the store's snapshots from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from kiln import errors
from kiln.cli.common import (
    F,
    cli_errors,
    data_dir_option,
    emit_json,
    json_option,
    resolve_data_dir,
)
from kiln.cli.keys import load_kek
from kiln.cli.progress import progress_bar
from kiln.config import DEFAULT_REGION, Settings
from kiln.disks import EXPORT_FORMATS, inspect_disk
from kiln.errors import KilnError
from kiln.store import open_store
from kiln.types import Extent, is_id, new_id

region_option = click.option(
    "--region", default=DEFAULT_REGION, show_default=True, help="Region whose store to use."
)
key_options = [
    click.option(
        "--key-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Key-encryption key: 32 bytes or 64 hex digits.",
    ),
    click.option("--key-id", help="Name of the key (default: the key file's name)."),
]


def with_key_options(fn: F) -> F:
    """--key-file and --key-id (click decorator stacking)."""
    for opt in reversed(key_options):
        fn = opt(fn)
    return fn


def _store(data_dir: Path | None, region: str):  # type: ignore[no-untyped-def]  # returns SnapshotStore
    settings = Settings(data_dir=resolve_data_dir(data_dir))
    return open_store(settings.store_url(region))


def _check_account(settings: Settings, account: str) -> None:
    """Refuse an unknown owner before any byte is stored."""
    from kiln.app import open_settings_catalog
    from kiln.catalog import accounts as cat_accounts

    catalog = open_settings_catalog(settings)
    try:
        with catalog.read() as tx:
            if cat_accounts.get_account(tx, account) is None:
                raise KilnError(errors.InvalidParameterValue, f"no account {account}")
    finally:
        catalog.close()


@click.group()
def snapshot() -> None:
    """Snapshots: disk images held in the deduplicated store."""


@snapshot.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--snapshot-id", help="Id for the new snapshot (default: a new snap-… id).")
@click.option("--parent", help="Parent snapshot: unchanged ranges reuse its chunks.")
@click.option(
    "--changed-ranges",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --parent: JSON list of [offset, length] pairs; only these ranges are read.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["raw", "qcow2", "vmdk", "vpc", "vhdx"]),
    help="Source format (default: detected).",
)
@click.option(
    "--account", help="Owner account id: also record the snapshot in the catalog, for the EC2 API."
)
@click.option(
    "--database-url",
    envvar="KILN_DATABASE_URL",
    default=None,
    help="Catalog database, with --account (default: the data dir's SQLite file).",
)
@region_option
@with_key_options
@data_dir_option
@json_option
@cli_errors
def import_(
    file: Path,
    snapshot_id: str | None,
    parent: str | None,
    changed_ranges: Path | None,
    fmt: str | None,
    account: str | None,
    database_url: str | None,
    region: str,
    key_file: Path | None,
    key_id: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Import a disk image (raw, qcow2, vmdk, vhd, vhdx) into a new snapshot."""
    if not file.exists():
        raise FileNotFoundError(2, "No such file", str(file))
    sid = snapshot_id or new_id("snap")
    if not is_id(sid, "snap"):
        raise click.BadParameter(f"malformed snapshot id {sid!r}", param_hint="--snapshot-id")
    changed = None
    if changed_ranges is not None:
        if parent is None:
            raise click.UsageError("--changed-ranges needs --parent")
        changed = [Extent(int(o), int(n)) for o, n in json.loads(changed_ranges.read_text())]
    settings = Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    if region not in settings.regions:
        raise KilnError(errors.InvalidParameterValue, f"unknown region {region!r}")
    if account is not None:
        _check_account(settings, account)
    store = open_store(settings.store_url(region))
    kek = load_kek(key_file, key_id)
    with progress_bar(f"import {file.name}", not as_json) as update:
        res = store.import_disk(
            inspect_disk(file, fmt), sid, parent=parent, changed=changed, key=kek, progress=update
        )
    if (
        account is not None
    ):  # the catalog row follows the manifest (docs/storage-format.md#write-order)
        from kiln.app import open_settings_catalog
        from kiln.services.snapshots.records import record_snapshot

        catalog = open_settings_catalog(settings)
        try:
            record_snapshot(
                catalog,
                region,
                account,
                sid,
                res.virtual_size,
                description=f"Imported from {file.name}",
                encrypted=kek is not None,
                kms_key_id=kek.key_id if kek else None,
                parent_snapshot_id=parent,
            )
        finally:
            catalog.close()
    if as_json:
        emit_json(asdict(res))
    else:
        click.echo(
            f"{res.snapshot_id}  {res.virtual_size} bytes  {res.chunks} chunks "
            f"({res.new_chunks} new, {res.new_stored_bytes} bytes stored)  {res.seconds:.2f}s"
        )


@snapshot.command("ls")
@region_option
@data_dir_option
@json_option
@cli_errors
def ls(region: str, data_dir: Path | None, as_json: bool) -> None:
    """List the snapshots in a region's store."""
    store = _store(data_dir, region)
    rows = []
    for sid in store.snapshots():
        m = store.manifest(sid)
        rows.append(
            {
                "SnapshotId": sid,
                "VirtualSize": m.virtual_size,
                "DataBytes": m.data_bytes,
                "Chunks": len(m),
                "Parent": m.parent,
                "Encrypted": m.key_id is not None,
                "Created": m.created,
            }
        )
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['SnapshotId']}  {r['VirtualSize']:>14}  {r['DataBytes']:>12}  {r['Created']}"
            + ("  encrypted" if r["Encrypted"] else "")
            + (f"  parent={r['Parent']}" if r["Parent"] else "")
        )


@snapshot.command("export")
@click.argument("snapshot_id")
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(sorted(EXPORT_FORMATS)), default="raw", show_default=True
)
@region_option
@with_key_options
@data_dir_option
@json_option
@cli_errors
def export(
    snapshot_id: str,
    out: Path,
    fmt: str,
    region: str,
    key_file: Path | None,
    key_id: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Write a snapshot's disk to OUT (raw, qcow2, vmdk or vpc)."""
    store = _store(data_dir, region)
    with progress_bar(f"export {snapshot_id}", not as_json) as update:
        store.restore(snapshot_id, out, fmt=fmt, key=load_kek(key_file, key_id), progress=update)
    if as_json:
        emit_json({"SnapshotId": snapshot_id, "Path": str(out), "Format": fmt})
    else:
        click.echo(str(out))
