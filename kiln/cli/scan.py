"""``kiln scan IMAGE``: scan an image's filesystem offline, straight from the store, and keep
its findings (docs/scan.md). Works while the server runs; GetImageFindings then answers them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from kiln.catalog.records import ImageScanRecord
from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import DEFAULT_REGION, Settings
from kiln.services.context import Caller, Services

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)
SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "informational": "dim",
}
PATHS_SHOWN = 3


@contextmanager
def _services(data_dir: Path | None, database_url: str | None) -> Iterator[Services]:
    from kiln.app import build_services

    settings = Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    services = build_services(settings, compute=None)
    try:
        yield services
    finally:
        services.catalog.close()


def scan_json(image_id: str, record: ImageScanRecord) -> dict[str, object]:
    return {
        "ImageId": image_id,
        "Status": record.status,
        "Reason": record.reason,
        "Policy": record.policy,
        "SnapshotId": record.snapshot_id,
        "BytesRead": record.bytes_read,
        "ScannedAt": record.scanned_at,
        "Findings": [
            {
                "CheckId": f.check_id,
                "Severity": f.severity,
                "Title": f.title,
                "Paths": list(f.paths),
                "FirstObservedAt": f.first_observed_at,
            }
            for f in record.findings
        ],
    }


@click.command("scan")
@click.argument("image_id")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The image's region.")
@click.option(
    "--account", "account_id", default=None, help="Scan as this account (default: the owner)."
)
@click.option(
    "--policy",
    default="all",
    show_default=True,
    help="Which checks: cis, marketplace, all, or a policy file (JSON; docs/scan.md#policies).",
)
@data_dir_option
@database_option
@json_option
@cli_errors
def scan(
    image_id: str,
    region: str,
    account_id: str | None,
    policy: str,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Scan IMAGE_ID's root filesystem (no boot, no mount, no restore) and store its findings.
    Exits 1 when the filesystem cannot be read (the image is then 'unscanned')."""
    from kiln.services.scans.scans import image_owner, scan_image, scan_policy

    chosen = scan_policy(policy)
    with _services(data_dir, database_url) as services:
        owner = account_id or image_owner(services, region, image_id)
        record = scan_image(services, Caller(owner, region), image_id, chosen)
    if as_json:
        emit_json(scan_json(image_id, record))
    else:
        _print(image_id, record)
    if record.status != "scanned":
        click.echo(f"error: {image_id} is unscanned: {record.reason}", err=True)
        sys.exit(1)


def _print(image_id: str, record: ImageScanRecord) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if record.status != "scanned":
        console.print(f"{image_id}: [bold red]unscanned[/] ({record.reason})")
        return
    rank = {s: i for i, s in enumerate(SEVERITY_STYLE)}
    findings = sorted(record.findings, key=lambda f: rank.get(f.severity, len(rank)))
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no findings"
    table = Table(
        title=f"{image_id} ({record.snapshot_id}), policy {record.policy}: {summary}; "
        f"{record.bytes_read} bytes read",
    )
    table.add_column("severity", no_wrap=True)
    table.add_column("check", no_wrap=True)  # ids stay whole: scripts grep them
    table.add_column("finding", ratio=2)
    table.add_column("paths", ratio=1, overflow="fold")
    for f in findings:  # the most severe first
        shown = list(f.paths[:PATHS_SHOWN])
        if len(f.paths) > PATHS_SHOWN:
            shown.append(f"… {len(f.paths) - PATHS_SHOWN} more")
        style = SEVERITY_STYLE.get(f.severity, "")
        table.add_row(f"[{style}]{f.severity}[/]", f.check_id, f.title, "\n".join(shown))
    console.print(table)
