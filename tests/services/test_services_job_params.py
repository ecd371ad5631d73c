"""Each job kind's params and result are frozen dataclasses that round-trip through the JSON the
catalog keeps, under the keys earlier rows were written with (so those rows still resume)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from kiln.runtime.jobs import from_json, to_json
from kiln.services.images.copy_image import CopiedSnapshot, CopyImageParams
from kiln.services.images.create_image import CreateImageParams, CreateImageResult, ImagedVolume
from kiln.services.instances.lifecycle import RESTART_INSTANCE
from kiln.services.snapshots.copy_snapshot import CopySnapshotParams
from kiln.services.snapshots.create_snapshot import CreateSnapshotParams
from kiln.services.snapshots.volumes import CreateVolumeParams
from kiln.services.tasks.export_image import ExportImageParams


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
    assert CopyImageParams.from_json(_through_json(copy)) == copy
    made = CreateImageParams(
        "i-1", "ami-1", False, (ImagedVolume("vol-1", "snap-2", "snap-1", None),)
    )
    data = _through_json(made)
    assert set(data["volumes"][0]) == {"volume_id", "snapshot_id", "parent", "key_id"}
    assert CreateImageParams.from_json(data) == made


def test_create_image_result_names_the_restart_key_lifecycle_reads() -> None:
    assert RESTART_INSTANCE in {f.name for f in fields(CreateImageResult)}
    assert from_json(CreateImageResult, {RESTART_INSTANCE: "i-1"}).restart_instance == "i-1"
