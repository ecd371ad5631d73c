"""Every `kiln` command and group takes --json; errors stay one `error: …` line (issue 8, 12)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kiln.cli.main import cli

KILN = [sys.executable, "-m", "kiln"]


def _walk(
    cmd: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(cli))


def _has_json(cmd: click.Command) -> bool:
    return any("--json" in p.opts for p in cmd.params if isinstance(p, click.Option))


def test_the_walk_sees_the_whole_tree() -> None:
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {
        "",
        "serve",
        "account",
        "account create",
        "account ls",
        "snapshot import",
        "store verify",
        "bake micro",
        "instance ls",
        "instance console",
    } <= paths


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "kiln")
def test_every_command_accepts_json(path: tuple[str, ...]) -> None:
    cmd = dict(COMMANDS)[path]
    assert _has_json(cmd), f"`kiln {' '.join(path)}` has no --json (kiln/cli/common.py json_option)"
    res = CliRunner().invoke(cli, [*path, "--json", "--help"], prog_name="kiln")
    assert res.exit_code == 0, res.output
    assert "--json" in res.stdout


def test_account_create_and_ls_accept_json(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli, ["account", "create", "--json", "--name", "a", "--data-dir", str(tmp_path)]
    )
    assert made.exit_code == 0, made.output
    doc = json.loads(made.stdout)
    assert set(doc) == {"AccountId", "AccessKeyId", "SecretAccessKey"}
    plain = runner.invoke(cli, ["account", "create", "--name", "b", "--data-dir", str(tmp_path)])
    assert set(json.loads(plain.stdout)) == set(doc)  # JSON with or without --json
    listed = runner.invoke(cli, ["account", "ls", "--json", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert doc["AccountId"] in {a["AccountId"] for a in json.loads(listed.stdout)}


def test_json_on_a_group_reaches_the_command(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["instance", "ls", "--data-dir", str(tmp_path)]
    assert runner.invoke(cli, args).stdout == ""  # text: no instances, no lines
    for where in (["--json", *args], ["instance", "--json", *args[1:]]):
        res = runner.invoke(cli, where)
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == []


@pytest.mark.parametrize(
    "args",
    [
        ["account", "create", "--json", "--name", "x", "--account-id", "12"],
        ["instance", "console", "i-0123456789abcdef0", "--json"],
        ["snapshot", "export", "snap-0123456789abcdef0", "/dev/null", "--json"],
    ],
    ids=["account-create", "instance-console", "snapshot-export"],
)
def test_errors_with_json_are_one_line(tmp_path: Path, args: list[str]) -> None:
    res = subprocess.run(
        [*KILN, *args, "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr


def test_unexpected_failures_are_one_line_too() -> None:
    from kiln.cli.common import cli_errors

    @click.command()
    @cli_errors
    def boom() -> None:
        raise RuntimeError("something\nbroke")

    res = CliRunner().invoke(boom, [])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: RuntimeError: something broke")
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_serve_json_prints_its_address_once_listening(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*KILN, "serve", "--json", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        doc = json.loads(line)
        assert doc["Host"] == "127.0.0.1" and doc["Port"] > 0
        assert doc["Url"] == f"http://127.0.0.1:{doc['Port']}/"
        assert doc["DataDir"] == str(tmp_path) and doc["Pid"] == proc.pid
        assert "us-east-1" in doc["Regions"]
        with urllib.request.urlopen(f"{doc['Url']}healthz", timeout=10) as r:  # listening now
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_instance_console_json(tmp_path: Path) -> None:
    run = tmp_path / "regions" / "eu-west-1" / "instances" / "i-0123456789abcdef0"
    run.mkdir(parents=True)
    (run / "console.log").write_bytes(b"KILN-READY\n")
    args = ["instance", "console", "i-0123456789abcdef0", "--data-dir", str(tmp_path)]
    assert CliRunner().invoke(cli, args).stdout == "KILN-READY\n"
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(res.stdout) == {
        "InstanceId": "i-0123456789abcdef0",
        "Region": "eu-west-1",
        "Output": "KILN-READY\n",
    }


def test_serve_refuses_a_region_botocore_does_not_know(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli,
        ["serve", "--data-dir", str(tmp_path), "--regions", "us-east-1,mars-north-1"],
        prog_name="kiln",
    )
    assert res.exit_code == 2 and "mars-north-1" in res.output
    assert not (tmp_path / "catalog.sqlite3").exists()
