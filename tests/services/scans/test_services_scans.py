"""The scan rules on a real catalog and a real store: scan_image reads the image's root
snapshot through the store, stores its findings, GetImageFindings answers them, and the sharing
policy refuses a public share of an image with a critical finding (docs/scan.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from scan_disks import CLEAN, PLANTED, make_ext4_disk, make_unreadable_disk
from services_fixtures import REGION, World

from kiln import errors
from kiln.catalog.records import LaunchPermissionRecord
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.services.images.image_attributes import (
    ModifyImageAttributeRequest,
    modify_image_attribute,
)
from kiln.services.keys.kms import kek
from kiln.services.keys.kms_keys import CreateKeyRequest, create_key
from kiln.services.scans.scans import (
    GetImageFindingsRequest,
    get_image_findings,
    scan_image,
    scan_policy,
)
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id


def _image(world: World, disk: Path, encrypted: bool = False) -> str:
    sid = new_id("snap")
    key = None
    if encrypted:
        record = create_key(world.svc.catalog, world.owner, CreateKeyRequest("scan"))
        key = kek(record)
    world.svc.stores[REGION].import_disk(raw_disk(disk), sid, key=key)
    record_snapshot(
        world.svc.catalog,
        REGION,
        world.owner.account_id,
        sid,
        disk.stat().st_size,
        encrypted=encrypted,
        kms_key_id=key.key_id if key else None,
        data_key_id=key.key_id if key else None,
    )
    return world.register(world.owner, f"scan-{sid}", snapshot_id=sid)


def _public(world: World, image_id: str) -> None:
    modify_image_attribute(
        world.svc,
        world.owner,
        ModifyImageAttributeRequest(image_id, add=(LaunchPermissionRecord(group="all"),)),
    )


def test_scan_image_stores_the_planted_findings(world: World, tmp_path: Path) -> None:
    image_id = _image(world, make_ext4_disk(tmp_path / "planted.raw", {**CLEAN, **PLANTED}))
    record = scan_image(world.svc, world.owner, image_id, scan_policy("all"))
    assert record.status == "scanned"
    by_check = {f.check_id: f for f in record.findings}
    assert by_check["accounts.root-password"].severity == "critical"
    assert by_check["secrets.private-key"].paths == ("/root/.ssh/id_ed25519",)
    assert "/srv/data/shared.txt" in by_check["files.world-writable"].paths
    assert 0 < record.bytes_read < (24 << 20) // 4  # a few blocks, not the disk
    page = get_image_findings(world.svc, world.owner, GetImageFindingsRequest(image_id))
    assert page.findings == record.findings and page.scan.snapshot_id == record.snapshot_id


def test_get_image_findings_pages_and_refuses_what_it_cannot_answer(
    world: World, tmp_path: Path
) -> None:
    image_id = _image(world, make_ext4_disk(tmp_path / "planted.raw", {**CLEAN, **PLANTED}))
    with pytest.raises(KilnError) as e:
        get_image_findings(world.svc, world.owner, GetImageFindingsRequest(image_id))
    assert e.value.code == errors.IncorrectState and "has not been scanned" in e.value.message
    record = scan_image(world.svc, world.owner, image_id, scan_policy("cis"))
    seen, token = [], None
    while True:
        page = get_image_findings(
            world.svc, world.owner, GetImageFindingsRequest(image_id, 1, token)
        )
        seen.extend(page.findings)
        token = page.next_token
        if token is None:
            break
    assert seen == list(record.findings) and len(seen) > 1
    with pytest.raises(KilnError) as e:
        get_image_findings(world.svc, world.owner, GetImageFindingsRequest(image_id, 0))
    assert e.value.code == errors.InvalidParameterValue
    with pytest.raises(KilnError) as e:
        get_image_findings(world.svc, world.stranger, GetImageFindingsRequest(image_id))
    assert e.value.code == errors.InvalidAMIIDNotFound


def test_unreadable_filesystem_is_unscanned_never_clean(world: World, tmp_path: Path) -> None:
    image_id = _image(world, make_unreadable_disk(tmp_path / "junk.raw"))
    record = scan_image(world.svc, world.owner, image_id, scan_policy("all"))
    assert record.status == "unscanned" and record.findings == ()
    assert record.reason is not None and "ext4" in record.reason
    with pytest.raises(KilnError) as e:
        get_image_findings(world.svc, world.owner, GetImageFindingsRequest(image_id))
    assert e.value.code == errors.IncorrectState and "unscanned" in e.value.message


def test_sharing_policy_refuses_public_with_a_critical_finding(
    world: World, tmp_path: Path
) -> None:
    svc = dataclasses.replace(world.svc, refuse_public_with_critical_findings=True)
    strict = dataclasses.replace(world, svc=svc)
    bad = _image(world, make_ext4_disk(tmp_path / "bad.raw", {**CLEAN, **PLANTED}))
    good = _image(world, make_ext4_disk(tmp_path / "good.raw", CLEAN))
    with pytest.raises(KilnError) as e:
        _public(strict, good)  # never scanned
    assert e.value.code == errors.OperationNotPermitted
    scan_image(svc, world.owner, bad, scan_policy("all"))
    scan_image(svc, world.owner, good, scan_policy("all"))
    with pytest.raises(KilnError) as e:
        _public(strict, bad)
    assert e.value.code == errors.OperationNotPermitted
    assert "accounts.root-password" in e.value.message
    _public(strict, good)
    _public(world, bad)  # without the setting the share is the owner's choice


def test_policy_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"checks": ["ssh.permit-root-login", "no.such-check"]}')
    with pytest.raises(KilnError) as e:
        scan_policy(str(bad))
    assert e.value.code == errors.InvalidParameterValue
    assert str(bad) in e.value.message and "no.such-check" in e.value.message
    with pytest.raises(KilnError):
        scan_policy("nope")


def test_an_encrypted_snapshot_is_scanned_with_its_key(world: World, tmp_path: Path) -> None:
    disk = make_ext4_disk(tmp_path / "enc.raw", {**CLEAN, **PLANTED})
    image_id = _image(world, disk, encrypted=True)
    record = scan_image(world.svc, world.owner, image_id, scan_policy("marketplace"))
    assert record.status == "scanned"
    assert "secrets.private-key" in {f.check_id for f in record.findings}
    with pytest.raises(KilnError):  # the snapshot is unreadable without its key
        world.svc.stores[REGION].reader(str(record.snapshot_id))


def test_only_the_owner_scans(world: World, tmp_path: Path) -> None:
    image_id = _image(world, make_ext4_disk(tmp_path / "c.raw", CLEAN))
    with pytest.raises(KilnError) as e:
        scan_image(world.svc, world.stranger, image_id, scan_policy("all"))
    assert e.value.code == errors.InvalidAMIIDNotFound
