"""`kiln alias set|list|delete` and `kiln parameter map|maps|unmap` as scripts use them: JSON
out, one `error:` line and exit 1 on bad input (docs/aliases.md, docs/ssm.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kiln.app import build_services
from kiln.catalog import SYSTEM_ACCOUNT_ID
from kiln.catalog.records import BlockDeviceRecord, EbsRecord
from kiln.config import Settings
from kiln.services.context import Caller
from kiln.services.images.images import RegisterImageRequest, register_image
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id

KILN = [sys.executable, "-m", "kiln"]
ALIAS = "ami-0123456789abcdef0"


def kiln(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KILN, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120
    )


def base_image(data_dir: Path, name: str) -> str:
    services = build_services(Settings(data_dir=data_dir), compute=None)
    try:
        who = Caller(SYSTEM_ACCOUNT_ID, "us-east-1")
        sid = new_id("snap")
        record_snapshot(services.catalog, who.region, who.account_id, sid, 1 << 30)
        return register_image(
            services,
            who,
            RegisterImageRequest(
                name=name,
                root_device_name="/dev/xvda",
                virtualization_type="hvm",
                block_devices=(BlockDeviceRecord("/dev/xvda", ebs=EbsRecord(snapshot_id=sid)),),
            ),
        )
    finally:
        services.catalog.close()


def one_error_line(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_alias_set_list_delete(tmp_path: Path) -> None:
    res = kiln(tmp_path, "alias", "set", ALIAS, "kiln/debian", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "Alias": ALIAS,
        "Target": "kiln/debian",
        "Region": "us-east-1",
    }
    listed = json.loads(kiln(tmp_path, "alias", "list", "--json").stdout)
    assert [(a["Alias"], a["ImageId"]) for a in listed] == [(ALIAS, None)]
    image_id = base_image(tmp_path, "kiln/debian/12.1")
    listed = json.loads(kiln(tmp_path, "--json", "alias", "list").stdout)  # group-level --json
    assert [(a["Alias"], a["Target"], a["ImageId"]) for a in listed] == [
        (ALIAS, "kiln/debian", image_id)
    ]
    res = kiln(tmp_path, "alias", "set", "ami-0123456789abcdef1", image_id, "--region", "us-east-1")
    assert res.returncode == 0 and "ami-0123456789abcdef1" in res.stdout
    text = kiln(tmp_path, "alias", "list", "--region", "us-east-1").stdout
    assert len(text.strip().splitlines()) == 2 and image_id in text
    assert (
        json.loads(kiln(tmp_path, "alias", "list", "--region", "eu-west-1", "--json").stdout) == []
    )
    res = kiln(tmp_path, "alias", "delete", ALIAS, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["Deleted"] is True
    one_error_line(kiln(tmp_path, "alias", "delete", ALIAS), "InvalidAMIID.NotFound", ALIAS)


def test_alias_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    one_error_line(kiln(tmp_path, "alias", "set", "debian", "kiln/debian"), "Malformed", "debian")
    one_error_line(
        kiln(tmp_path, "alias", "set", ALIAS, "ami-00000000000000000"), "InvalidAMIID.NotFound"
    )
    one_error_line(kiln(tmp_path, "alias", "set", ALIAS, "x y"), "InvalidParameterValue")
    one_error_line(
        kiln(tmp_path, "alias", "set", ALIAS, "kiln/debian", "--region", "mars-1"), "mars-1"
    )
    assert json.loads(kiln(tmp_path, "alias", "list", "--json").stdout) == []


def test_parameter_map_maps_unmap(tmp_path: Path) -> None:
    name = "/aws/service/debian/release/12/latest/amd64"
    res = kiln(tmp_path, "parameter", "map", name, "kiln/debian", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"Name": name, "Family": "kiln/debian"}
    image_id = base_image(tmp_path, "kiln/debian/12.1")
    maps = json.loads(kiln(tmp_path, "parameter", "maps", "--json").stdout)
    assert maps == [{"Name": name, "Family": "kiln/debian", "Images": {"us-east-1": image_id}}]
    one_error_line(kiln(tmp_path, "parameter", "map", "/mine/x", "kiln/debian"), "/aws/")
    assert kiln(tmp_path, "parameter", "unmap", name).returncode == 0
    one_error_line(kiln(tmp_path, "parameter", "unmap", name), "ParameterNotFound")
