"""Packages, SBOM and CVEs end to end (docs/sbom.md): purpose-made ext4 disks with a fake dpkg
database imported with ``kiln snapshot import`` and registered through boto3 against a live
``kiln serve``; ``kiln sbom`` (CycloneDX parsed back with cyclonedx's reader), ``kiln sbom
diff``, ``kiln cve import`` / ``kiln cve scan``, and the CVE findings in GetImageFindings."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_live import TEST_IMPORT_ARGS, Creds, LiveKiln
from cyclonedx.model.bom import Bom
from packageurl import PackageURL
from sbom_data import FEED, V1, V1_FINDINGS, V2, V2_FINDINGS, debian_root, write_feed
from scan_disks import make_ext4_disk


@dataclass
class SbomWorld:
    kiln: LiveKiln
    owner: Creds

    def image(self, disk: Path) -> str:
        snap = self.kiln.snapshot(self.owner, disk)
        image_id = self.kiln.client(self.owner).register_image(
            Name=f"sbom-{secrets.token_hex(4)}",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            Architecture="x86_64",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )["ImageId"]
        return str(image_id)

    def run(self, *args: str) -> Any:
        return self.kiln.kiln(*args, "--data-dir", str(self.kiln.data_dir))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SbomWorld]:
    kiln = LiveKiln(tmp_path_factory.mktemp("kiln-sbom"), None, serve_args=TEST_IMPORT_ARGS)
    kiln.start()
    try:
        yield SbomWorld(kiln, kiln.account("owner"))
    finally:
        kiln.stop()


@pytest.fixture(scope="module")
def images(world: SbomWorld, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    tmp = tmp_path_factory.mktemp("sbom-disks")
    v1 = world.image(make_ext4_disk(tmp / "v1.raw", debian_root(V1)))
    v2 = world.image(make_ext4_disk(tmp / "v2.raw", debian_root(V2)))
    return v1, v2


def test_kiln_sbom_writes_cyclonedx_with_packages_and_purls(
    world: SbomWorld, images: tuple[str, str], tmp_path: Path
) -> None:
    v1, _ = images
    out = tmp_path / "v1.cdx.json"
    res = world.run("sbom", v1, "--output", str(out), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"ImageId": v1, "Output": str(out), "Components": len(V1)}
    bom = Bom.from_json(json.loads(out.read_text()))  # type: ignore[attr-defined]
    assert bom.metadata.component.version == v1
    purls = {c.name: c.purl for c in bom.components}
    assert set(purls) == set(V1)
    for name, (version, arch, _) in V1.items():
        assert purls[name] == PackageURL.from_string(
            f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12"
        )
    stdout = world.run("sbom", v1)  # to standard output
    assert stdout.returncode == 0 and json.loads(stdout.stdout)["bomFormat"] == "CycloneDX"

    missing = world.run("sbom", "ami-0123456789abcdef0")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "InvalidAMIID.NotFound" in missing.stderr


def test_kiln_sbom_diff_between_two_versions(world: SbomWorld, images: tuple[str, str]) -> None:
    v1, v2 = images
    res = world.run("sbom", "diff", v1, v2, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [c["Name"] for c in doc["Added"]] == ["curl"]
    assert [c["Name"] for c in doc["Removed"]] == ["zlib1g"]
    assert [(c["Name"], c["Before"], c["After"]) for c in doc["Upgraded"]] == [
        ("libssl3", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1"),
        ("openssl", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1"),
    ]
    table = world.run("sbom", "diff", v1, v2)
    assert table.returncode == 0, table.stderr
    assert "curl" in table.stdout and "upgraded" in table.stdout and "zlib1g" in table.stdout


def test_kiln_cve_import_and_scan(
    world: SbomWorld, images: tuple[str, str], tmp_path: Path
) -> None:
    v1, v2 = images
    feed = write_feed(tmp_path / "bookworm.json")
    res = world.run("cve", "import", str(feed), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["Packages"] == len(FEED)

    bad = tmp_path / "broken.json"
    bad.write_text('{"openssl": {"CVE-2024-1": {"releases": {"bookworm": {"status": "maybe"}}}}}')
    refused = world.run("cve", "import", str(bad))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: InvalidParameterValue") and "status" in refused.stderr

    old = world.run("cve", "scan", v1, "--json")
    assert old.returncode == 0, old.stderr
    doc = json.loads(old.stdout)
    assert doc["Feed"]["Name"] == "bookworm.json"  # the refused feed changed nothing
    assert {(f["Cve"], f["Package"]) for f in doc["Findings"]} == V1_FINDINGS
    ssl = next(f for f in doc["Findings"] if f["Package"] == "libssl3")
    assert (ssl["InstalledVersion"], ssl["FixedVersion"]) == (
        "3.0.11-1~deb12u1",
        "3.0.13-1~deb12u1",
    )
    new = world.run("cve", "scan", v2, "--json")
    assert {(f["Cve"], f["Package"]) for f in json.loads(new.stdout)["Findings"]} == V2_FINDINGS
    table = world.run("cve", "scan", v1)
    assert table.returncode == 0 and "CVE-2024-0727" in table.stdout

    # kept in the image's stored scan: GetImageFindings answers them
    assert world.run("scan", v1).returncode == 0
    assert json.loads(world.run("cve", "scan", v1, "--json").stdout)["Stored"] is True
    findings = world.kiln.client(world.owner).get_image_findings(ImageId=v1)["ImageFindings"]
    titles = {f["Title"] for f in findings if f["Title"].startswith("packages.cve: ")}
    assert (
        "packages.cve: CVE-2024-0727 in openssl 3.0.11-1~deb12u1 (fixed in 3.0.13-1~deb12u1)"
        in titles
    )
    assert len(titles) == len(V1_FINDINGS)
