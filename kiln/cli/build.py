"""``kiln build RECIPE``: build an image from an Image Builder recipe on a live ``kiln serve``
(docs/builds.md). The build's VMs are the server's (RunInstances, CreateImage, CopyImage over
its EC2 endpoint, signed as the building account); the steps run over SSH from here, with a
live step log; the build versions go in the catalog."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kiln import errors
from kiln.cli.common import cli_errors, data_dir_option, emit_json, json_option, resolve_data_dir
from kiln.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, Settings
from kiln.errors import KilnError
from kiln.services.builds.build import BuildResult
from kiln.services.builds.steps import StepEvent
from kiln.services.context import Caller, Services

if TYPE_CHECKING:
    from rich.console import Console

database_option = click.option(
    "--database-url", default=None, help="Catalog database (default: the data dir's SQLite file)."
)
STYLE = {
    "phase": "bold cyan",
    "step": "bold",
    "done": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "output": "dim",
    "info": "blue",
}
MARK = {"phase": "==", "step": "->", "done": "ok", "failed": "!!", "skipped": "--", "info": "..."}


@contextmanager
def _services(data_dir: Path | None, database_url: str | None) -> Iterator[Services]:
    from kiln.app import build_services

    settings = Settings(data_dir=resolve_data_dir(data_dir), database_url=database_url)
    services = build_services(settings, compute=None)
    try:
        yield services
    finally:
        services.catalog.close()


def _credentials(services: Services, account_id: str | None) -> tuple[str, str, str]:
    """(account, access key id, secret): the account's own key from the catalog, or
    $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY (whose account the catalog says)."""
    from kiln.catalog import accounts as cat

    with services.catalog.read() as tx:
        if account_id is not None:
            key = cat.active_access_key(tx, services.catalog.sealer, account_id)
            if key is None:
                raise KilnError(
                    errors.AuthFailure, f"account {account_id} has no active access key"
                )
            return account_id, key.access_key_id, key.secret_access_key
        env_id = os.environ.get("AWS_ACCESS_KEY_ID")
        env_secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not env_id or not env_secret:
            raise KilnError(
                errors.MissingParameter,
                "give --account ID, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        found = cat.lookup_access_key(tx, services.catalog.sealer, env_id)
        if found is None:
            raise KilnError(errors.AuthFailure, "AWS_ACCESS_KEY_ID is not an active Kiln key")
        return found.account_id, env_id, env_secret


def result_json(r: BuildResult, log: list[str]) -> dict[str, object]:
    return {
        "BuildVersion": r.build_version,
        "Recipe": r.recipe,
        "Version": r.version,
        "Build": r.build,
        "State": r.state,
        "ImageId": r.image_id,
        "ParentImageId": r.parent_image_id,
        "Images": [{"Region": i.region, "ImageId": i.image_id} for i in r.images],
        "Reason": r.reason,
        "ExitCode": r.exit_code,
        "KeptInstanceId": r.kept_instance_id,
        "Log": log,
    }


@click.command("build")
@click.argument("recipe_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--distribution",
    "distribution_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A distribution configuration (regions, shares, tags, KMS key, deprecation).",
)
@click.option(
    "--on-error",
    type=click.Choice(["terminate", "keep"]),
    default="terminate",
    show_default=True,
    help="keep: leave the failed build's instance running (and its key in ./) to debug.",
)
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="Where to build.")
@click.option(
    "--account", "account_id", default=None, help="Build as this account (its access key)."
)
@click.option(
    "--endpoint-url",
    default=None,
    help=f"The kiln serve to build on (default: $KILN_ENDPOINT_URL, else "
    f"http://{DEFAULT_HOST}:{DEFAULT_PORT}).",
)
@data_dir_option
@database_option
@json_option
@cli_errors
def build(
    recipe_file: Path,
    distribution_file: Path | None,
    on_error: str,
    region: str,
    account_id: str | None,
    endpoint_url: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Build RECIPE_FILE's image: launch the parent, run the build and validate phases over
    SSH, create the image, run the test phase on a new instance of it, distribute. Exits 1 when
    a step fails (nothing is left behind unless --on-error keep)."""
    from rich.console import Console

    from kiln.builder.recipe import load_distribution, load_recipe
    from kiln.buildports.ec2 import HttpEc2
    from kiln.buildports.ssh import SshConnector
    from kiln.services.builds.build import run_build

    recipe = load_recipe(recipe_file)
    distribution = load_distribution(distribution_file) if distribution_file else None
    endpoint = endpoint_url or os.environ.get(
        "KILN_ENDPOINT_URL", f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    )
    console = Console(stderr=as_json, highlight=False)
    log: list[str] = []
    total = sum(len(phase.steps) for rc in recipe.components for phase in rc.component.phases)
    count = [0]
    status = console.status("starting", spinner="dots")
    if console.is_terminal:
        status.start()  # a progress line under the log: step n of total, what runs now

    def emit(event: StepEvent) -> None:
        log.append(f"[{event.kind}] {event.text}")
        if event.kind in ("step", "skipped"):
            count[0] += 1
        if event.kind == "output":
            console.print(f"   {event.text}", style=STYLE["output"], markup=False)
            return
        prefix = f"[{count[0]}/{total}] " if event.kind in ("step", "skipped") else ""
        console.print(
            f"{MARK.get(event.kind, '')} {prefix}{event.text}",
            style=STYLE.get(event.kind),
            markup=False,
        )
        status.update(f"step {count[0]} of {total}: {event.text}")

    try:
        with _services(data_dir, database_url) as services:
            account, key_id, secret = _credentials(services, account_id)
            result = run_build(
                services,
                Caller(account, region),
                HttpEc2(endpoint, region, key_id, secret),
                SshConnector(),
                recipe,
                distribution,
                keep_on_error=on_error == "keep",
                emit=emit,
            )
    finally:
        status.stop()
    _report(console, result, log, as_json)


def _report(console: Console, result: BuildResult, log: list[str], as_json: bool) -> None:
    if result.kept_key and result.kept_instance_id:
        key_path = Path(f"{result.kept_instance_id}.pem")
        key_path.write_text(result.kept_key)
        key_path.chmod(0o600)
        console.print(f"... SSH key of {result.kept_instance_id}: {key_path}", style="blue")
    if as_json:
        emit_json(result_json(result, log))
    elif result.state == "available":
        console.print(f"{result.build_version}: {result.image_id}", style="bold green")
        for i in result.images:
            console.print(f"  {i.region}: {i.image_id}")
    if result.state != "available":
        click.echo(f"error: build {result.build_version} failed: {result.reason}", err=True)
        sys.exit(1)


@click.command("builds")
@click.option("--account", "account_id", required=True, help="Whose builds.")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The builds' region.")
@click.option("--recipe", default=None, help="Only this recipe's builds.")
@data_dir_option
@database_option
@json_option
@cli_errors
def builds(
    account_id: str,
    region: str,
    recipe: str | None,
    data_dir: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """List an account's build versions (NAME/VERSION/N), oldest first: state, image, reason;
    with --json each with its step log."""
    from kiln.catalog import builds as cat

    with _services(data_dir, database_url) as services, services.catalog.read() as tx:
        rows = cat.build_versions(tx, account_id, region, recipe)
    out = [
        {
            "BuildVersion": f"{b.recipe}/{b.version}/{b.build}",
            "State": b.state,
            "ImageId": b.image_id,
            "ParentImageId": b.parent_image_id,
            "Reason": b.reason,
            "StartedAt": b.started_at,
            "FinishedAt": b.finished_at,
            "Log": b.log.splitlines(),
        }
        for b in rows
    ]
    if as_json:
        emit_json(out)
        return
    for r in out:
        reason = f"  {str(r['Reason']).splitlines()[0]}" if r["Reason"] else ""
        click.echo(f"{r['BuildVersion']}  {r['State']:<9} {r['ImageId'] or '-'}{reason}")
