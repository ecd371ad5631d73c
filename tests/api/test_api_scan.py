"""Offline compliance scans end to end (docs/scan.md): purpose-made ext4 disks (no VM) imported
with ``kiln snapshot import`` and registered through boto3 against a live ``kiln serve``; scanned
with ``kiln scan`` (table and --json); findings read with boto3's ``get_image_findings`` (the
AWS CLI v1 installed here predates GetImageFindings); the server's --refuse-public-with-critical-findings policy refusing a public share."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_live import TEST_IMPORT_ARGS, Creds, LiveKiln
from botocore.exceptions import ClientError
from scan_disks import CLEAN, PLANTED, make_ext4_disk, make_unreadable_disk

PLANTED_CHECKS = {
    "ssh.permit-root-login": "/etc/ssh/sshd_config.d/50-root.conf",
    "accounts.root-password": "/etc/shadow",
    "files.world-writable": "/srv/data/shared.txt",
    "secrets.private-key": "/root/.ssh/id_ed25519",
    "files.suid-inventory": "/usr/local/bin/rootme",
}


@dataclass
class ScanWorld:
    kiln: LiveKiln
    owner: Creds
    stranger: Creds

    def ec2(self, creds: Creds | None = None) -> Any:
        return self.kiln.client(creds or self.owner)

    def image(self, disk: Path) -> tuple[str, str]:
        snap = self.kiln.snapshot(self.owner, disk)
        image_id = self.ec2().register_image(
            Name=f"scan-{secrets.token_hex(4)}",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            Architecture="x86_64",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )["ImageId"]
        return str(image_id), snap

    def scan(self, image_id: str, *args: str) -> Any:
        return self.kiln.kiln("scan", image_id, "--data-dir", str(self.kiln.data_dir), *args)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanWorld]:
    kiln = LiveKiln(
        tmp_path_factory.mktemp("kiln-scan"),
        None,
        serve_args=(*TEST_IMPORT_ARGS, "--refuse-public-with-critical-findings"),
    )
    kiln.start()
    try:
        yield ScanWorld(kiln, kiln.account("owner"), kiln.account("stranger"))
    finally:
        kiln.stop()


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as e:
        call()
    return dict(e.value.response["Error"])


def _is_public(world: ScanWorld, image_id: str) -> bool:
    perms = world.ec2().describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    return {"Group": "all"} in perms["LaunchPermissions"]


def test_scan_finds_the_planted_problems(world: ScanWorld, tmp_path: Path) -> None:
    disk = make_ext4_disk(tmp_path / "planted.raw", {**CLEAN, **PLANTED})
    image_id, snap = world.image(disk)

    res = world.scan(image_id, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["Status"] == "scanned" and doc["SnapshotId"] == snap
    assert 0 < doc["BytesRead"] < disk.stat().st_size // 4  # the blocks the checks need
    found = {f["CheckId"]: f for f in doc["Findings"]}
    for check, path in PLANTED_CHECKS.items():
        assert path in found[check]["Paths"], (check, found.get(check))
    assert found["accounts.root-password"]["Severity"] == "critical"

    table = world.scan(image_id)  # the rich table
    assert table.returncode == 0, table.stderr
    assert "accounts.root-password" in table.stdout and "critical" in table.stdout

    findings = world.ec2().get_image_findings(ImageId=image_id)["ImageFindings"]
    by_check = {f["Title"].split(":", 1)[0]: f for f in findings}
    assert set(PLANTED_CHECKS) <= set(by_check)
    root = by_check["accounts.root-password"]
    assert root["SeverityLabel"] == "critical" and root["SnapshotId"] == snap
    assert root["Paths"] == ["/etc/shadow"] and "empty password" in root["Title"]
    assert root["FirstObservedAt"] <= root["UpdatedAt"]

    # the policy: no public share with a critical finding; the refusal changes nothing
    err = _error(
        lambda: world.ec2().modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}
        )
    )
    assert err["Code"] == "OperationNotPermitted" and "accounts.root-password" in err["Message"]
    assert not _is_public(world, image_id)


def test_clean_image_has_none_of_the_planted_findings(world: ScanWorld, tmp_path: Path) -> None:
    image_id, _ = world.image(make_ext4_disk(tmp_path / "clean.raw", CLEAN))
    ec2 = world.ec2()
    share = {"ImageId": image_id, "LaunchPermission": {"Add": [{"Group": "all"}]}}
    assert _error(lambda: ec2.modify_image_attribute(**share))["Code"] == "OperationNotPermitted"
    err = _error(lambda: ec2.get_image_findings(ImageId=image_id))
    assert err["Code"] == "IncorrectState" and "has not been scanned" in err["Message"]

    res = world.scan(image_id, "--policy", "marketplace", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["Status"] == "scanned" and doc["Policy"] == "marketplace"
    titles = [f["Title"] for f in ec2.get_image_findings(ImageId=image_id)["ImageFindings"]]
    assert not any(t.split(":", 1)[0] in PLANTED_CHECKS for t in titles), titles
    ec2.modify_image_attribute(**share)  # scanned, nothing critical: public
    assert _is_public(world, image_id)
    # a public image's findings are visible to every account
    stranger = world.ec2(world.stranger).get_image_findings(ImageId=image_id, MaxResults=1)
    assert len(stranger["ImageFindings"]) <= 1


def test_unreadable_filesystem_is_unscanned(world: ScanWorld, tmp_path: Path) -> None:
    image_id, _ = world.image(make_unreadable_disk(tmp_path / "junk.raw"))
    res = world.scan(image_id, "--json")
    assert res.returncode == 1
    assert json.loads(res.stdout)["Status"] == "unscanned"
    assert res.stderr.startswith("error: ") and "unscanned" in res.stderr
    err = _error(lambda: world.ec2().get_image_findings(ImageId=image_id))
    assert err["Code"] == "IncorrectState" and "unscanned" in err["Message"]
    err = _error(
        lambda: world.ec2().modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}
        )
    )
    assert err["Code"] == "OperationNotPermitted" and "unscanned" in err["Message"]


def test_bad_input_gets_ec2_errors_and_changes_nothing(world: ScanWorld, tmp_path: Path) -> None:
    image_id, _ = world.image(make_ext4_disk(tmp_path / "clean2.raw", CLEAN))
    ec2 = world.ec2()
    assert _error(lambda: ec2.get_image_findings(ImageId="ami-zz"))["Code"] == (
        "InvalidAMIID.Malformed"
    )
    stranger = world.ec2(world.stranger)
    assert _error(lambda: stranger.get_image_findings(ImageId=image_id))["Code"] == (
        "InvalidAMIID.NotFound"
    )
    assert _error(lambda: ec2.get_image_findings(ImageId=image_id, DryRun=True))["Code"] == (
        "DryRunOperation"
    )

    policy = tmp_path / "policy.json"
    policy.write_text('{"checks": ["secrets.private-key"], "severity": {}}')
    res = world.scan(image_id, "--policy", str(policy))
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert str(policy) in res.stderr and "'severity'" in res.stderr
    err = _error(lambda: ec2.get_image_findings(ImageId=image_id))
    assert "has not been scanned" in err["Message"]  # the refused scan stored nothing

    policy.write_text('{"name": "keys", "checks": ["secrets.private-key"]}')
    res = world.scan(image_id, "--policy", str(policy), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) | {"Findings": []} == json.loads(res.stdout)  # none planted
    assert ec2.get_image_findings(ImageId=image_id, MaxResults=5)["ImageFindings"] == []
    err = _error(lambda: ec2.get_image_findings(ImageId=image_id, NextToken="not-ours"))
    assert err["Code"] == "InvalidPaginationToken"
