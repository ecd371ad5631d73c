"""Each job kind's params and result are frozen dataclasses that round-trip through the JSON the
catalog keeps, under the keys earlier rows were written with (so those rows still resume)."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

from kiln.runtime.jobs import from_json, to_json
from kiln.services.images.copy_image import CopiedSnapshot, CopyImageParams
from kiln.services.images.create_image import CreateImageParams, CreateImageResult, ImagedVolume
from kiln.services.instances.lifecycle import RESTART_INSTANCE
from kiln.services.snapshots.copy_snapshot import CopySnapshotParams
from kiln.services.snapshots.create_snapshot import CreateSnapshotParams
from kiln.services.snapshots.volumes import CreateVolumeParams
from kiln.services.tasks.disk_sources import DiskSource
from kiln.services.tasks.export_image import ExportImageParams
from kiln.services.tasks.import_image import (
    ImportDisk,
    ImportedDisk,
    ImportImageParams,
    ImportResult,
    ImportSnapshotParams,
    job_disks,
)


def _through_json(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(to_json(value)))
    return data


def test_flat_params_round_trip_under_their_old_keys() -> None:
    cases: list[tuple[Any, set[str]]] = [
        (
            CreateSnapshotParams("vol-1", "snap-1", None, "snap-0"),
            {"volume_id", "snapshot_id", "key_id", "parent"},
        ),
        (
            CreateVolumeParams("vol-1", None, None, 1 << 30, None),
            {"volume_id", "snapshot_id", "snapshot_key_id", "disk_bytes", "natural_size"},
        ),
        (
            CopySnapshotParams("eu-west-1", "snap-1", None, "snap-2", "k"),
            {"source_region", "source_snapshot_id", "source_key_id", "snapshot_id", "key_id"},
        ),
        (
            ExportImageParams("ami-1", "snap-1", None, "raw", "RAW", "b", "", None, None, "/x"),
            {
                "image_id",
                "snapshot_id",
                "key_id",
                "format",
                "disk_image_format",
                "s3_bucket",
                "s3_prefix",
                "description",
                "role_name",
                "path",
            },
        ),
    ]
    for value, keys in cases:
        data = _through_json(value)
        assert set(data) == keys
        assert from_json(type(value), data) == value


def test_nested_params_round_trip() -> None:
    copy = CopyImageParams("eu-west-1", "ami-1", "ami-2", (CopiedSnapshot("s1", None, "s2", "k"),))
    assert from_json(CopyImageParams, _through_json(copy)) == copy
    made = CreateImageParams(
        "i-1", "ami-1", False, (ImagedVolume("vol-1", "snap-2", "snap-1", None),)
    )
    data = _through_json(made)
    assert set(data["volumes"][0]) == {"volume_id", "snapshot_id", "parent", "key_id"}
    assert from_json(CreateImageParams, data) == made


def test_create_image_result_names_the_restart_key_lifecycle_reads() -> None:
    assert RESTART_INSTANCE in {f.name for f in fields(CreateImageResult)}
    assert from_json(CreateImageResult, {RESTART_INSTANCE: "i-1"}).restart_instance == "i-1"


def test_import_params_round_trip_and_read_rows_of_the_dict_era() -> None:
    disk = ImportDisk("snap-1", source=DiskSource(path="/in/a.raw"), format="raw", url=None)
    snap = ImportSnapshotParams(disk, "d", "key-1", "arn:aws:kms:x")
    assert from_json(ImportSnapshotParams, _through_json(snap)) == snap
    image = ImportImageParams(
        (replace(disk, device_name="/dev/sda1"), ImportDisk("snap-0", existing=True)),
        "ami-1",
        "x86_64",
        "Linux",
        "BYOL",
        "RunInstances",
    )
    assert from_json(ImportImageParams, _through_json(image)) == image
    result = ImportResult({"snap-1": ImportedDisk(1 << 20, 4096, "RAW")}, snapshot_id="snap-1")
    assert from_json(ImportResult, _through_json(result)) == result
    # a row written before the params were typed (kiln 069510b): plain dicts, same keys
    old = {
        "disks": [
            {
                "source": {"path": None, "url": "http://h/x", "bucket": None, "key": None},
                "url": "http://h/x",
                "format": None,
                "description": None,
                "snapshot_id": "snap-9",
                "existing": False,
                "device_name": "/dev/sda1",
            },
            {
                "source": None,
                "format": None,
                "description": "kept",
                "snapshot_id": "snap-8",
                "existing": True,
                "device_name": "/dev/sdb",
            },
        ],
        "image_id": "ami-9",
        "description": None,
        "architecture": "arm64",
        "platform": "Linux",
        "boot_mode": None,
        "license_type": "BYOL",
        "hypervisor": "xen",
        "usage_operation": "RunInstances",
        "key_id": None,
        "kms_arn": None,
    }
    disks = job_disks("import-image", old)
    assert [d.snapshot_id for d in disks] == ["snap-9", "snap-8"]
    assert disks[0].source == DiskSource(url="http://h/x")
    assert disks[1].existing and disks[1].source is None
    assert from_json(ImportImageParams, old).architecture == "arm64"
    done = from_json(ImportResult, {"disks": {"snap-9": {"virtual_size": 5, "format": "VMDK"}}})
    assert done.disks["snap-9"] == ImportedDisk(5, None, "VMDK")
