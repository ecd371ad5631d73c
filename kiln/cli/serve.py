"""``kiln serve``: the EC2 endpoint on uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from kiln.cli.common import cli_errors, data_dir_option, resolve_data_dir
from kiln.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGIONS, Settings
from kiln.services.downloads import parse_networks


@click.command()
@data_dir_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="TCP port.")
@click.option("--database-url", default=None,
              help="Catalog database (default: sqlite:///DATA_DIR/catalog.sqlite3; "
                   "PostgreSQL: postgresql+psycopg://USER@HOST/DB).")
@click.option("--region", "regions", multiple=True,
              help=f"A region to serve (repeatable; default: {', '.join(DEFAULT_REGIONS)}).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--import-dir", "import_dirs", multiple=True,
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="A directory whose files any account may import by local path "
                   "(repeatable; default: none).")
@click.option("--import-allow-net", "import_allow_nets", multiple=True, metavar="CIDR",
              help="A loopback/private/link-local network URL imports may reach "
                   "(repeatable; default: public addresses only).")
@click.option("--import-max-bytes", type=click.IntRange(min=1), default=1 << 40,
              show_default=True, help="Largest URL download.")
@click.option("--import-timeout", "import_timeout_s", type=click.FloatRange(min=0.1),
              default=6 * 3600.0, show_default=True, help="Longest URL download, in seconds.")
@cli_errors
def serve(data_dir: Path | None, host: str, port: int, database_url: str | None,
          regions: tuple[str, ...], log_level: str, import_dirs: tuple[Path, ...],
          import_allow_nets: tuple[str, ...], import_max_bytes: int,
          import_timeout_s: float) -> None:
    """Serve the EC2 Query API at http://HOST:PORT/ (region: the request's SigV4 scope)."""
    import logging

    import uvicorn

    from kiln.app import create_app

    settings = Settings(data_dir=resolve_data_dir(data_dir),
                        regions=tuple(dict.fromkeys(regions)) or DEFAULT_REGIONS,
                        database_url=database_url, host=host, port=port,
                        import_dirs=import_dirs, import_allow_nets=import_allow_nets,
                        import_max_bytes=import_max_bytes, import_timeout_s=import_timeout_s)
    try:
        parse_networks(import_allow_nets)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--import-allow-net") from None
    logging.getLogger("kiln").setLevel(log_level.upper())
    app = create_app(settings)
    click.echo(f"kiln: serving EC2 API on http://{host}:{port}/ "
               f"(regions: {', '.join(settings.regions)}; data: {settings.data_dir})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
