"""The package, SBOM and CVE rules on a real catalog and a real store (docs/sbom.md): purpose-made
ext4 disks with a fake dpkg database, their CycloneDX SBOM parsed back with cyclonedx's own
reader, a diff of two versions, and CVE matching against a feed the test writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cyclonedx.model.bom import Bom
from packageurl import PackageURL
from sbom_data import FEED, V1, V1_FINDINGS, V2, V2_FINDINGS, debian_root, write_feed
from scan_disks import CLEAN, make_ext4_disk, make_unreadable_disk
from services_fixtures import REGION, World

from kiln import errors
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.services.scans.packages import (
    diff_image_packages,
    image_inventory,
    image_sbom,
    import_cve_feed,
    scan_image_cves,
)
from kiln.services.scans.scans import (
    GetImageFindingsRequest,
    get_image_findings,
    scan_image,
    scan_policy,
)
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id


def _image(world: World, disk: Path) -> str:
    sid = new_id("snap")
    world.svc.stores[REGION].import_disk(raw_disk(disk), sid)
    record_snapshot(world.svc.catalog, REGION, world.owner.account_id, sid, disk.stat().st_size)
    return world.register(world.owner, f"sbom-{sid}", snapshot_id=sid)


def _debian(world: World, tmp_path: Path, packages: dict[str, tuple[str, str, str | None]]) -> str:
    return _image(world, make_ext4_disk(tmp_path / f"{new_id('d')}.raw", debian_root(packages)))


def test_sbom_lists_dpkg_packages_with_versions_and_purls(world: World, tmp_path: Path) -> None:
    image_id = _debian(world, tmp_path, V1)
    doc = json.loads(image_sbom(world.svc, world.owner, image_id))
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    bom = Bom.from_json(doc)  # type: ignore[attr-defined]  # py-serializable adds it
    assert bom.metadata.component.version == image_id
    assert bom.metadata.component.bom_ref.value == image_id
    got = {c.name: (c.version, c.purl) for c in bom.components}
    assert set(got) == set(V1)  # the deinstalled package is not listed
    for name, (version, arch, _source) in V1.items():
        assert got[name][0] == version
        purl = got[name][1]
        assert purl == PackageURL.from_string(
            f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12"
        )
    bash = next(c for c in bom.components if c.name == "bash")
    assert {p.name: p.value for p in bash.properties}["kiln:source"] == "bash 5.2.15-2"


def test_sbom_diff_names_added_removed_and_upgraded(world: World, tmp_path: Path) -> None:
    a, b = _debian(world, tmp_path, V1), _debian(world, tmp_path, V2)
    diff = diff_image_packages(world.svc, world.owner, a, b)
    assert [(c.name, c.after) for c in diff.added] == [("curl", "7.88.1-10+deb12u5")]
    assert [(c.name, c.before) for c in diff.removed] == [("zlib1g", "1:1.2.13.dfsg-1")]
    assert [(c.name, c.before, c.after) for c in diff.upgraded] == [
        ("libssl3", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1"),
        ("openssl", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1"),
    ]
    back = diff_image_packages(world.svc, world.owner, b, a)
    assert [c.name for c in back.downgraded] == ["libssl3", "openssl"]


def test_micro_image_lists_busybox_and_its_applets(world: World, tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed")
    files = {
        "etc/os-release": ('NAME="Kiln micro"\nID=kiln-micro\nVERSION_ID="1"\n', 0o644),
        "bin/busybox": (Path(busybox).read_bytes(), 0o755),
        "tmp/.keep": ("", 0o644),
    }
    links = {"bin/sh": "/bin/busybox", "sbin/init": "/bin/busybox", "bin/ls": "/bin/busybox"}
    image_id = _image(world, make_ext4_disk(tmp_path / "micro.raw", files, links=links))
    found = image_inventory(world.svc, world.owner, image_id)
    assert found.inventory.source == "binaries"
    (pkg,) = found.inventory.packages
    assert pkg.name == "busybox" and pkg.applets == ("/bin/ls", "/bin/sh", "/sbin/init")
    assert pkg.version[0].isdigit() and pkg.arch == "amd64"
    bom = Bom.from_json(json.loads(image_sbom(world.svc, world.owner, image_id)))  # type: ignore[attr-defined]
    (component,) = bom.components
    assert component.purl is not None and component.purl.name == "busybox"
    assert component.purl.qualifiers.get("distro") is None  # the image names no Debian release


def test_cve_scan_flags_old_versions_only(world: World, tmp_path: Path) -> None:
    old, new = _debian(world, tmp_path, V1), _debian(world, tmp_path, V2)
    with pytest.raises(KilnError) as e:
        scan_image_cves(world.svc, world.owner, old)
    assert e.value.code == errors.IncorrectState and "kiln cve import" in e.value.message
    feed = import_cve_feed(world.svc, write_feed(tmp_path / "feed.json"))
    assert feed.packages == len(FEED) and feed.cves == 5

    result = scan_image_cves(world.svc, world.owner, old)
    assert {(f.cve, f.package) for f in result.findings} == V1_FINDINGS
    ssl = next(f for f in result.findings if f.package == "openssl")
    assert ssl.installed_version == "3.0.11-1~deb12u1"
    assert ssl.fixed_version == "3.0.13-1~deb12u1" and ssl.severity == "medium"
    bash = next(f for f in result.findings if f.package == "bash")
    assert bash.fixed_version is None and bash.severity == "informational"
    assert not result.stored  # never scanned: nothing to keep them in
    fixed = scan_image_cves(world.svc, world.owner, new)
    assert {(f.cve, f.package) for f in fixed.findings} == V2_FINDINGS


def test_malformed_feed_is_refused_whole_and_the_old_one_stays(
    world: World, tmp_path: Path
) -> None:
    image_id = _debian(world, tmp_path, V1)
    import_cve_feed(world.svc, write_feed(tmp_path / "good.json"))
    bad = json.loads(json.dumps(FEED))
    bad["bash"]["CVE-2022-3715"]["releases"]["bookworm"]["fixed_version"] = "not a version!"
    bad["newpkg"] = {"CVE-2099-1": {"releases": {"bookworm": {"status": "open"}}}}
    for content in (json.dumps(bad), "{not json", json.dumps({"openssl": []})):
        path = tmp_path / "bad.json"
        path.write_text(content)
        with pytest.raises(KilnError) as e:
            import_cve_feed(world.svc, path)
        assert e.value.code == errors.InvalidParameterValue and str(path) in e.value.message
    result = scan_image_cves(world.svc, world.owner, image_id)
    assert result.feed.name == "good.json"
    assert {(f.cve, f.package) for f in result.findings} == V1_FINDINGS


def test_cve_findings_join_the_stored_scan(world: World, tmp_path: Path) -> None:
    image_id = _debian(world, tmp_path, V1)
    import_cve_feed(world.svc, write_feed(tmp_path / "feed.json"))
    scan_image(world.svc, world.owner, image_id, scan_policy("all"))
    assert scan_image_cves(world.svc, world.owner, image_id).stored

    def cve_titles() -> list[str]:
        page = get_image_findings(world.svc, world.owner, GetImageFindingsRequest(image_id))
        return [f.title for f in page.findings if f.check_id == "packages.cve"]

    titles = cve_titles()
    assert len(titles) == len(V1_FINDINGS)
    assert "CVE-2024-0727 in openssl 3.0.11-1~deb12u1 (fixed in 3.0.13-1~deb12u1)" in titles
    scan_image(world.svc, world.owner, image_id, scan_policy("cis"))  # a new compliance scan
    assert cve_titles() == titles  # keeps the last CVE scan's findings


def test_unreadable_or_missing_images_are_refused(world: World, tmp_path: Path) -> None:
    junk = _image(world, make_unreadable_disk(tmp_path / "junk.raw"))
    with pytest.raises(KilnError) as e:
        image_sbom(world.svc, world.owner, junk)
    assert e.value.code == errors.IncorrectState and "cannot be read" in e.value.message
    clean = _image(world, make_ext4_disk(tmp_path / "clean.raw", CLEAN))
    with pytest.raises(KilnError) as e:
        image_sbom(world.svc, world.stranger, clean)
    assert e.value.code in (errors.InvalidAMIIDNotFound, errors.AuthFailure)
