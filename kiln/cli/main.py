"""The ``kiln`` command. Each area lives in its own module and registers one click group."""

from __future__ import annotations

import importlib
import logging
import os

import click

from kiln.cli.common import add_group_json

# (module, attribute) of each sub-command; a module owns its own group.
COMMANDS = [
    ("kiln.cli.snapshot", "snapshot"),
    ("kiln.cli.store", "store"),
    ("kiln.cli.serve", "serve"),
    ("kiln.cli.account", "account"),
    ("kiln.cli.bucket", "bucket"),
    ("kiln.cli.bake", "bake"),
    ("kiln.cli.image", "image"),
    ("kiln.cli.instance", "instance"),
    ("kiln.cli.alias", "alias"),
    ("kiln.cli.alias", "parameter"),
    ("kiln.cli.lifecycle", "lifecycle"),
    ("kiln.cli.marketplace", "marketplace"),
    ("kiln.cli.trust", "trust"),
    ("kiln.cli.scan", "scan"),
    ("kiln.cli.sbom", "sbom"),
    ("kiln.cli.sbom", "cve"),
    ("kiln.cli.build", "build"),
    ("kiln.cli.build", "builds"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kiln")
def cli() -> None:
    """Kiln: machine images and VMs on your own hosts, behind the EC2 API."""
    logging.basicConfig(
        level=os.environ.get("KILN_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


for _mod, _attr in COMMANDS:
    try:
        cli.add_command(getattr(importlib.import_module(_mod), _attr))
    except ModuleNotFoundError as e:  # area not built yet
        if e.name != _mod:
            raise

add_group_json(cli)  # `kiln --json …`, `kiln account --json …`: see kiln/cli/common.py


def main() -> None:
    cli(prog_name="kiln")
