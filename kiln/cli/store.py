"""``kiln store verify | gc``: maintenance of each region's chunk store."""

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
from kiln.store import gc as run_gc
from kiln.store import open_store
from kiln.store import verify as run_verify


@click.group()
def store() -> None:
    """The chunk store: verify and garbage-collect."""


@store.command()
@region_option
@with_key_options
@data_dir_option
@json_option
@cli_errors
def verify(region: str, key_file: Path | None, key_id: str | None, data_dir: Path | None, as_json: bool) -> None:
    """Re-hash every chunk and check every manifest. Exit 1 if anything is damaged."""
    st = open_store(Settings(data_dir=resolve_data_dir(data_dir)).store_dir(region))
    kek = load_kek(key_file, key_id)
    with progress_bar("verify", not as_json) as update:
        report = run_verify(st, [kek] if kek else None, progress=update)
    if as_json:
        emit_json(asdict(report))
    else:
        click.echo(f"{report.chunks_checked} chunks ({report.bytes_checked} bytes), "
                   f"{report.manifests_checked} manifests checked: " + ("ok" if report.ok else "DAMAGED"))
        for c in report.damaged_chunks:
            click.echo(f"damaged chunk {c}")
        for c in report.missing_chunks:
            click.echo(f"missing chunk {c}")
        for s in report.damaged_manifests:
            click.echo(f"damaged manifest {s}")
        for s in report.damaged_snapshots:
            click.echo(f"snapshot hurt: {s}")
    if not report.ok:
        if not as_json:
            click.echo(f"error: store damaged: {len(report.damaged_snapshots)} snapshot(s) hurt", err=True)
        sys.exit(1)


@store.command()
@click.option("--grace-seconds", type=float, default=600.0, show_default=True,
              help="Keep unreferenced chunks younger than this (protects concurrent imports).")
@region_option
@data_dir_option
@json_option
@cli_errors
def gc(grace_seconds: float, region: str, data_dir: Path | None, as_json: bool) -> None:
    """Delete chunks that no snapshot references (mark and sweep)."""
    st = open_store(Settings(data_dir=resolve_data_dir(data_dir)).store_dir(region))
    with progress_bar("gc", not as_json) as update:
        report = run_gc(st, grace_seconds=grace_seconds, progress=update)
    if as_json:
        emit_json(asdict(report))
    else:
        click.echo(f"deleted {report.chunks_deleted} chunks ({report.bytes_freed} bytes), kept {report.chunks_kept}")
