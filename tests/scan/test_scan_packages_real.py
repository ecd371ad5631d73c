"""The real base images' SBOMs (docs/sbom.md). The ``micro`` image, baked here (under a
second), lists busybox with its applets, dropbear and glibc from their version strings. The
``kiln/debian`` image lists its dpkg packages with versions and purls. The image is the one bench/scan.py bakes into /var/tmp/kiln-bench/scan-debian
(``kiln bake debian`` takes minutes, so the test does not bake it; it is skipped without it).
Its catalog is read with sqlite3 read-only and its store opened directly: the bench's data dir
is not migrated or written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cyclonedx.model.bom import Bom
from packageurl import PackageURL

from kiln.bake.micro import build_micro_image
from kiln.errors import KilnError
from kiln.scan.packages import read_inventory
from kiln.scan.sbom import ImageRef, sbom_json
from kiln.scan.scanner import open_root
from kiln.scan.source import FileDisk
from kiln.store.store import open_store

BENCH = Path("/var/tmp/kiln-bench/scan-debian")
REGION = "us-east-1"


def _debian_image() -> tuple[str, str, str]:
    db_path = BENCH / "catalog.sqlite3"
    if not db_path.exists() or not (BENCH / "regions" / REGION / "store").is_dir():
        pytest.skip(f"no baked debian image in {BENCH} (python -m bench.scan bakes it)")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT i.image_id, i.name, b.snapshot_id FROM images i"
            " JOIN block_device_mappings b ON b.image_id = i.image_id"
            " WHERE i.name LIKE 'kiln/debian/%' AND i.region = ? AND b.snapshot_id IS NOT NULL"
            " ORDER BY i.name DESC, b.position LIMIT 1",
            (REGION,),
        ).fetchone()
    finally:
        db.close()
    if row is None:
        pytest.skip(f"no kiln/debian image in {BENCH}")
    return str(row[0]), str(row[1]), str(row[2])


def test_debian_image_sbom_lists_its_dpkg_packages() -> None:
    image_id, name, snap = _debian_image()
    store = open_store(f"file://{BENCH / 'regions' / REGION / 'store'}")
    inventory = read_inventory(open_root(store.reader(snap)))
    assert inventory.source == "dpkg" and inventory.os.distro == "debian-12"
    doc = json.loads(sbom_json(ImageRef(image_id, name, REGION, snap), inventory))
    bom = Bom.from_json(doc)  # type: ignore[attr-defined]  # py-serializable adds it
    assert bom.metadata.component.name == name
    by_name = {c.name: c for c in bom.components}
    assert len(by_name) > 100
    for pkg in ("base-files", "bash", "libc6", "openssh-server", "systemd", "dpkg"):
        component = by_name[pkg]
        assert component.version and component.version[0].isdigit()
        assert component.purl is not None
        assert component.purl == PackageURL.from_string(component.purl.to_string())
        assert component.purl.type == "deb" and component.purl.namespace == "debian"
        assert component.purl.version == component.version
        assert component.purl.qualifiers["distro"] == "debian-12"
        assert component.purl.qualifiers["arch"] in ("amd64", "all")
    assert by_name["base-files"].version.startswith("12.")


def test_micro_image_sbom_lists_busybox_dropbear_and_glibc(tmp_path: Path) -> None:
    try:
        baked = build_micro_image(tmp_path / "micro.raw", tmp_path)
    except KilnError as e:  # a Debian package the bake needs is missing
        pytest.skip(f"cannot bake micro: {e.message}")
    disk = FileDisk(baked.path)
    try:
        inventory = read_inventory(open_root(disk))
    finally:
        disk.close()
    assert inventory.source == "binaries" and inventory.os.id == "kiln-micro"
    doc = json.loads(
        sbom_json(ImageRef("ami-0123456789abcdef0", "micro", REGION, "snap-x"), inventory)
    )
    bom = Bom.from_json(doc)  # type: ignore[attr-defined]  # py-serializable adds it
    purls = {c.name: c.purl for c in bom.components}
    assert set(purls) == {"busybox", "dropbear", "libc6"}
    assert purls["busybox"] is not None and purls["busybox"].type == "deb"
    assert purls["dropbear"] is not None and purls["dropbear"].type == "generic"
    busybox = next(p for p in inventory.packages if p.name == "busybox")
    assert "/bin/sh" in busybox.applets and "/sbin/init" in busybox.applets
    assert busybox.arch == "amd64" and busybox.version[0].isdigit()
