"""``kiln sbom IMAGE``, ``kiln sbom diff A B``, ``kiln cve import FILE``, ``kiln cve scan
IMAGE``: package inventories as CycloneDX, their differences, and offline CVE matching
(docs/sbom.md). Like ``kiln scan`` they read the store directly and need no running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option
from kiln.cli.scan import SEVERITY_STYLE, _services, database_option
from kiln.config import DEFAULT_REGION
from kiln.services.context import Caller, Services

region_option = click.option(
    "--region", default=DEFAULT_REGION, show_default=True, help="The images' region."
)
account_option = click.option(
    "--account", "account_id", default=None, help="Read as this account (default: the owner)."
)


def _caller(services: Services, region: str, account_id: str | None, image_id: str) -> Caller:
    from kiln.services.scans.scans import image_owner

    return Caller(account_id or image_owner(services, region, image_id), region)


class _ImageGroup(click.Group):
    """``kiln sbom IMAGE …`` runs ``kiln sbom export IMAGE …``; ``kiln sbom diff …`` the diff."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--json"):
            args = ["export", *args]
        return super().parse_args(ctx, args)


@click.group("sbom", cls=_ImageGroup)
def sbom() -> None:
    """An image's packages as a CycloneDX SBOM (kiln sbom IMAGE), or what changed between two
    images (kiln sbom diff A B)."""


@sbom.command("export")
@click.argument("image_id")
@region_option
@account_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the SBOM to this file (default: standard output).",
)
@data_dir_option
@database_option
@json_option
@cli_errors
def export(
    image_id: str,
    region: str,
    account_id: str | None,
    output: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Write IMAGE_ID's CycloneDX 1.6 JSON SBOM: every installed package with its version and
    purl, the image as the metadata component. With --output and --json, print what was
    written ({"ImageId", "Output", "Components"}); without --output the SBOM is the output."""
    from kiln.services.scans.packages import image_sbom

    with _services(data_dir, database_url) as services:
        document = image_sbom(services, _caller(services, region, account_id, image_id), image_id)
    if output is None:
        click.echo(document)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(document + "\n", encoding="utf-8")
    tmp.replace(output)
    components = len(json.loads(document).get("components", []))
    if as_json:
        emit_json({"ImageId": image_id, "Output": str(output), "Components": components})
    else:
        click.echo(f"{image_id}: SBOM of {components} packages written to {output}")


@sbom.command("diff")
@click.argument("image_a")
@click.argument("image_b")
@region_option
@account_option
@data_dir_option
@database_option
@json_option
@cli_errors
def diff(
    image_a: str,
    image_b: str,
    region: str,
    account_id: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """The packages added, removed, upgraded and downgraded from IMAGE_A to IMAGE_B."""
    from kiln.services.scans.packages import diff_image_packages

    with _services(data_dir, database_url) as services:
        caller = _caller(services, region, account_id, image_a)
        changes = diff_image_packages(services, caller, image_a, image_b)
    groups = {
        "Added": changes.added,
        "Removed": changes.removed,
        "Upgraded": changes.upgraded,
        "Downgraded": changes.downgraded,
    }
    if as_json:
        emit_json(
            {
                "ImageA": image_a,
                "ImageB": image_b,
                **{
                    k: [
                        {"Name": c.name, "Arch": c.arch, "Before": c.before, "After": c.after}
                        for c in v
                    ]
                    for k, v in groups.items()
                },
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    counts = ", ".join(f"{len(v)} {k.lower()}" for k, v in groups.items())
    table = Table(title=f"{image_a} → {image_b}: {counts}")
    for col in ("change", "package", "arch", image_a, image_b):
        table.add_column(col, overflow="fold")
    style = {"Added": "green", "Removed": "red", "Upgraded": "cyan", "Downgraded": "yellow"}
    for kind, items in groups.items():
        for c in items:
            table.add_row(
                f"[{style[kind]}]{kind.lower()}[/]", c.name, c.arch or "", c.before, c.after
            )
    Console().print(table)


@click.group("cve")
def cve() -> None:
    """Offline CVE matching against Debian's security-tracker JSON (docs/sbom.md)."""


@cve.command("import")
@click.argument("feed", type=click.Path(path_type=Path, dir_okay=False))
@data_dir_option
@database_option
@json_option
@cli_errors
def import_feed(feed: Path, data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Make FEED (Debian's security-tracker JSON) the feed CVE scans match against. A feed that
    does not parse is refused whole; the one imported before stays."""
    from kiln.services.scans.packages import import_cve_feed

    with _services(data_dir, database_url) as services:
        record = import_cve_feed(services, feed)
    out = {
        "Name": record.name,
        "Sha256": record.sha256,
        "Packages": record.packages,
        "Cves": record.cves,
        "ImportedAt": record.imported_at,
    }
    if as_json:
        emit_json(out)
    else:
        click.echo(f"imported {record.name}: {record.packages} packages, {record.cves} CVEs")


def cve_json(result: Any) -> dict[str, object]:
    return {
        "ImageId": result.image.image_id,
        "SnapshotId": result.image.snapshot_id,
        "Feed": {"Name": result.feed.name, "Sha256": result.feed.sha256},
        "Stored": result.stored,
        "Findings": [
            {
                "Cve": f.cve,
                "Package": f.package,
                "Source": f.source,
                "InstalledVersion": f.installed_version,
                "FixedVersion": f.fixed_version,
                "Urgency": f.urgency,
                "Severity": f.severity,
            }
            for f in result.findings
        ],
    }


@cve.command("scan")
@click.argument("image_id")
@region_option
@account_option
@data_dir_option
@database_option
@json_option
@cli_errors
def scan(
    image_id: str,
    region: str,
    account_id: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """The CVEs of IMAGE_ID's packages in the imported feed (CVE, package, installed and fixed
    version); also kept in the image's stored scan (GetImageFindings) when it has one."""
    from kiln.services.scans.packages import scan_image_cves

    with _services(data_dir, database_url) as services:
        result = scan_image_cves(
            services, _caller(services, region, account_id, image_id), image_id
        )
    if as_json:
        emit_json(cve_json(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{image_id}: {len(result.findings)} CVE findings (feed {result.feed.name})"
    )
    for col in ("severity", "cve", "package", "installed", "fixed"):
        table.add_column(col, overflow="fold")
    for f in result.findings:
        table.add_row(
            f"[{SEVERITY_STYLE.get(f.severity, '')}]{f.severity}[/]",
            f.cve,
            f.package,
            f.installed_version,
            f.fixed_version or "no fix yet",
        )
    Console().print(table)
