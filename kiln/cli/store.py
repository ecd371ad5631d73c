"""``kiln store verify [--repair] | gc``: maintenance of each region's chunk store."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click

from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.cli.keys import load_kek
from kiln.cli.progress import progress_bar
from kiln.cli.snapshot import region_option, with_key_options
from kiln.config import Settings
from kiln.runtime import layout
from kiln.store import RepairReport, SnapshotStore, VerifyReport, file_url, open_store
from kiln.store import gc as run_gc
from kiln.store import repair as run_repair
from kiln.store import verify as run_verify


@click.group()
def store() -> None:
    """The chunk store: verify and garbage-collect."""


@store.command()
@click.option(
    "--repair",
    "do_repair",
    is_flag=True,
    help="Then rewrite what intact copies allow (this store's, or another region's) "
    "and name on one line each what cannot be repaired. Exit 1 unless clean afterwards.",
)
@region_option
@with_key_options
@data_dir_option
@json_option
@cli_errors
def verify(
    do_repair: bool,
    region: str,
    key_file: Path | None,
    key_id: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Re-hash every chunk and check every manifest; quarantine what is damaged. Exit 1 if anything is."""
    settings = Settings(data_dir=resolve_data_dir(data_dir))
    st = open_store(settings.store_url(region))
    kek = load_kek(key_file, key_id)
    keys = [kek] if kek else None
    if do_repair:
        with progress_bar("verify and repair", not as_json) as update:
            fix = run_repair(
                st, keys, sources=_other_stores(settings.data_dir, region), progress=update
            )
        _show_repair(fix, as_json)
        return
    with progress_bar("verify", not as_json) as update:
        report = run_verify(st, keys, progress=update)
    if as_json:
        emit_json(asdict(report))
    else:
        _show_verify(report)
    if not report.ok:
        if not as_json:
            click.echo(
                f"error: store damaged: {len(report.damaged_snapshots)} snapshot(s) hurt", err=True
            )
        sys.exit(1)


def _show_verify(report: VerifyReport) -> None:
    click.echo(
        f"{report.chunks_checked} chunks ({report.bytes_checked} bytes), "
        f"{report.manifests_checked} manifests checked: " + ("ok" if report.ok else "DAMAGED")
    )
    for c in report.damaged_chunks:
        click.echo(f"damaged chunk {c}")
    for c in report.missing_chunks:
        click.echo(f"missing chunk {c}")
    for s in report.damaged_manifests:
        click.echo(f"damaged manifest {s}")
    for s in report.damaged_snapshots:
        click.echo(f"snapshot hurt: {s}")
    for p in report.superseded_packs:
        click.echo(
            f"damaged pack {p}: every hurt chunk has an intact copy (gc or verify --repair drops it)"
        )


def _show_repair(fix: RepairReport, as_json: bool) -> None:
    if as_json:
        emit_json(asdict(fix))
    else:
        for c in fix.repointed:
            click.echo(f"chunk {c}: read from another intact copy in this store")
        for cp in fix.copied:
            click.echo(f"chunk {cp.chunk}: copied from region {cp.source}")
        for p in fix.packs_rewritten:
            click.echo(f"pack {p}: intact chunks rewritten, damaged pack deleted")
        for u in fix.unrepairable:
            click.echo(f"cannot repair chunk {u.chunk}: breaks {', '.join(u.snapshots)}")
        for s in fix.damaged_manifests:
            click.echo(f"cannot repair manifest {s}: it is damaged")
        _show_verify(fix.after)
    if not fix.ok:
        if not as_json:
            click.echo(
                f"error: store still damaged: {len(fix.unrepairable)} chunk(s) and "
                f"{len(fix.damaged_manifests)} manifest(s) cannot be repaired",
                err=True,
            )
        sys.exit(1)


def _other_stores(data_dir: Path, region: str) -> list[tuple[str, SnapshotStore]]:
    """Every other region's store under ``data_dir`` (the ones that exist)."""
    return [
        (name, open_store(file_url(path)))
        for name, path in layout.store_dirs(data_dir).items()
        if name != region
    ]


@store.command()
@click.option(
    "--grace-seconds",
    type=float,
    default=600.0,
    show_default=True,
    help="Keep unreferenced chunks younger than this (protects concurrent imports).",
)
@region_option
@data_dir_option
@json_option
@cli_errors
def gc(grace_seconds: float, region: str, data_dir: Path | None, as_json: bool) -> None:
    """Delete chunks that no snapshot references (mark and sweep)."""
    st = open_store(Settings(data_dir=resolve_data_dir(data_dir)).store_url(region))
    with progress_bar("gc", not as_json) as update:
        report = run_gc(st, grace_seconds=grace_seconds, progress=update)
    if as_json:
        emit_json(asdict(report))
    else:
        click.echo(
            f"deleted {report.chunks_deleted} chunks ({report.bytes_freed} bytes), kept {report.chunks_kept}"
        )
