"""``kiln serve``: the EC2 endpoint on uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from kiln.cli.common import cli_errors, data_dir_option, resolve_data_dir
from kiln.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGIONS, Settings


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
@cli_errors
def serve(data_dir: Path | None, host: str, port: int, database_url: str | None,
          regions: tuple[str, ...], log_level: str) -> None:
    """Serve the EC2 Query API at http://HOST:PORT/ (region: the request's SigV4 scope)."""
    import logging

    import uvicorn

    from kiln.app import create_app

    settings = Settings(data_dir=resolve_data_dir(data_dir),
                        regions=tuple(dict.fromkeys(regions)) or DEFAULT_REGIONS,
                        database_url=database_url, host=host, port=port)
    logging.getLogger("kiln").setLevel(log_level.upper())
    app = create_app(settings)
    click.echo(f"kiln: serving EC2 API on http://{host}:{port}/ "
               f"(regions: {', '.join(settings.regions)}; data: {settings.data_dir})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
