"""``kiln serve``: the EC2 endpoint on uvicorn.

Once the socket listens, serve says where: one line on stderr, or with ``--json`` one JSON object
on one line of stdout (``{"Url", "Host", "Port", "Regions", "DataDir", "Pid"}``; with ``--port 0``
it names the port the kernel chose). Logs stay on stderr either way.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kiln.aws.regions import known_region_names
from kiln.cli.common import cli_errors, data_dir_option, fail, json_option, resolve_data_dir
from kiln.config import DEFAULT_HOST, DEFAULT_PORT, Settings, all_regions
from kiln.runtime.downloads import parse_networks


@click.command()
@data_dir_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="TCP port.")
@click.option(
    "--database-url",
    default=None,
    help="Catalog database (default: sqlite:///DATA_DIR/catalog.sqlite3; "
    "PostgreSQL: postgresql+psycopg://USER@HOST/DB).",
)
@click.option(
    "--regions",
    "region_lists",
    multiple=True,
    metavar="R1,R2,...",
    help="Serve only these regions (comma-separated; default: every region botocore knows "
    "for EC2).",
)
@click.option("--region", "regions", multiple=True, help="A region to serve (repeatable).")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--import-dir",
    "import_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A directory whose files any account may import by local path "
    "(repeatable; default: none).",
)
@click.option(
    "--import-allow-net",
    "import_allow_nets",
    multiple=True,
    metavar="CIDR",
    help="A loopback/private/link-local network URL imports may reach "
    "(repeatable; default: public addresses only).",
)
@click.option(
    "--import-max-bytes",
    type=click.IntRange(min=1),
    default=1 << 40,
    show_default=True,
    help="Largest URL download.",
)
@click.option(
    "--import-timeout",
    "import_timeout_s",
    type=click.FloatRange(min=0.1),
    default=6 * 3600.0,
    show_default=True,
    help="Longest URL download, in seconds.",
)
@click.option(
    "--network",
    type=click.Choice(["auto", "netns", "user"]),
    default="auto",
    show_default=True,
    help="Instance networks: netns = VPCs in network namespaces (root; PublicIpAddress:22), "
    "user = QEMU user networking (SSH at 127.0.0.1:PORT), auto = netns where it works.",
)
@click.option(
    "--instance-max-vcpus",
    type=click.IntRange(min=1),
    default=None,
    help="Most vCPUs one instance gets, whatever its type (default and ceiling: the host's).",
)
@click.option(
    "--instance-max-memory-mib",
    type=click.IntRange(min=64),
    default=None,
    help="Most memory (MiB) one instance gets, whatever its type (default and ceiling: half "
    "the host's).",
)
@click.option(
    "--amazon-images",
    is_flag=True,
    help="DescribeImages Owners=amazon (DescribeSnapshots OwnerIds=amazon) matches the base "
    "images of the kiln account (default: amazon matches nothing).",
)
@click.option(
    "--lifecycle-interval",
    "lifecycle_interval_s",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Run each lifecycle policy once per this many seconds (0: never; docs/lifecycle.md).",
)
@click.option(
    "--recycle-bin-sweep-seconds",
    "recycle_bin_sweep_s",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="How often images whose Recycle Bin retention ended are purged.",
)
@click.option(
    "--recycle-bin-clock-offset",
    "recycle_bin_clock_offset_s",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds the Recycle Bin's clock runs ahead of the real one (retention ends, unlock "
    "delays). An operator/test setting: leave 0 on a real deployment.",
)
@click.option(
    "--refuse-public-with-critical-findings",
    is_flag=True,
    help="Refuse to make an image public unless its latest scan (kiln scan) has no critical "
    "finding; an image never scanned, or unscanned, is refused too (docs/scan.md).",
)
@json_option
@cli_errors
def serve(
    data_dir: Path | None,
    host: str,
    port: int,
    database_url: str | None,
    region_lists: tuple[str, ...],
    regions: tuple[str, ...],
    log_level: str,
    import_dirs: tuple[Path, ...],
    import_allow_nets: tuple[str, ...],
    import_max_bytes: int,
    import_timeout_s: float,
    network: str,
    instance_max_vcpus: int | None,
    instance_max_memory_mib: int | None,
    amazon_images: bool,
    lifecycle_interval_s: float,
    recycle_bin_sweep_s: float,
    recycle_bin_clock_offset_s: float,
    refuse_public_with_critical_findings: bool,
    as_json: bool,
) -> None:
    """Serve the EC2 Query API at http://HOST:PORT/ (region: the request's SigV4 scope).
    With --json, print {"Url", "Host", "Port", "Regions", "DataDir", "Pid"} as one line on
    stdout once listening."""
    import logging

    from kiln.app import create_app

    served = served_regions(region_lists, regions)
    settings = Settings(
        data_dir=resolve_data_dir(data_dir),
        regions=served,
        database_url=database_url,
        host=host,
        port=port,
        import_dirs=import_dirs,
        import_allow_nets=import_allow_nets,
        import_max_bytes=import_max_bytes,
        import_timeout_s=import_timeout_s,
        network=network,
        instance_max_vcpus=instance_max_vcpus,
        instance_max_memory_mib=instance_max_memory_mib,
        amazon_images=amazon_images,
        lifecycle_interval_s=lifecycle_interval_s,
        recycle_bin_sweep_s=recycle_bin_sweep_s,
        recycle_bin_clock_offset_s=recycle_bin_clock_offset_s,
        refuse_public_with_critical_findings=refuse_public_with_critical_findings,
    )
    try:
        parse_networks(import_allow_nets)
    except ValueError as e:
        fail(f"--import-allow-net: {e}")
    logging.getLogger("kiln").setLevel(log_level.upper())
    app = create_app(settings)

    def listening(bound_host: str, bound_port: int) -> None:
        url = f"http://{_url_host(bound_host)}:{bound_port}/"
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "Url": url,
                        "Host": bound_host,
                        "Port": bound_port,
                        "Regions": list(settings.regions),
                        "DataDir": str(settings.data_dir),
                        "Pid": os.getpid(),
                    }
                )
            )
            sys.stdout.flush()
        else:
            click.echo(
                f"kiln: serving the AWS API (EC2, STS, KMS, SSM, S3, Recycle Bin) on {url} "
                f"(regions: {_regions_text(settings.regions)}; data: {settings.data_dir})",
                err=True,
            )

    _run_uvicorn(app, host, port, log_level, listening)


def served_regions(lists: tuple[str, ...], single: tuple[str, ...]) -> tuple[str, ...]:
    """The regions of ``--regions a,b`` and ``--region a`` together (every region botocore
    knows when neither is given); a name botocore does not know is a usage error."""
    names = [n.strip() for text in lists for n in text.split(",") if n.strip()] + list(single)
    unknown = [n for n in names if n not in known_region_names()]
    if unknown:
        raise click.BadParameter(
            f"not regions botocore knows for EC2: {', '.join(unknown)}", param_hint="--regions"
        )
    return tuple(dict.fromkeys(names)) or all_regions()


def _regions_text(regions: tuple[str, ...]) -> str:
    if set(regions) == set(all_regions()):
        return f"all {len(regions)} that botocore knows"
    return ", ".join(regions)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _run_uvicorn(
    app: Any, host: str, port: int, log_level: str, listening: Callable[[str, int], None]
) -> None:
    """``uvicorn.run`` for one process, calling ``listening(host, port)`` once bound."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                name = self.servers[0].sockets[0].getsockname()
                listening(str(name[0]), int(name[1]))

    server = Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    )
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it shut down for
        pass
    except SystemExit:  # uvicorn exits 3 when it cannot bind or start
        if server.started:
            raise
    if not server.started:  # uvicorn logged why just above
        fail(f"could not listen on {_url_host(host)}:{port}")
