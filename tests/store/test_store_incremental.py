"""Incremental snapshots: a parent's chunks are reused; with changed ranges only those are read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from store_helpers import same_bytes

MIB = 1024 * 1024


def _rewrite(path: Path, writes: list[tuple[int, bytes]]) -> None:
    with open(path, "r+b") as f:
        for off, data in writes:
            f.seek(off)
            f.write(data)


def test_child_with_changed_ranges_reads_only_those(kiln, small_disk: Path, tmp_path: Path) -> None:
    parent = kiln("snapshot", "import", str(small_disk), "--json").json()
    child_disk = tmp_path / "child.raw"
    subprocess.run(["cp", "--sparse=always", str(small_disk), str(child_disk)], check=True)
    writes = [
        (1 * MIB + 123, os.urandom(4096)),
        (40 * MIB + 8192, os.urandom(4096)),
        (20 * MIB, os.urandom(8192)),
    ]  # the last one lands in a hole of the parent
    _rewrite(child_disk, writes)
    ranges = tmp_path / "changed.json"
    ranges.write_text(json.dumps([[o, len(d)] for o, d in writes]))
    child = kiln(
        "snapshot",
        "import",
        str(child_disk),
        "--parent",
        parent["snapshot_id"],
        "--changed-ranges",
        str(ranges),
        "--json",
    ).json()
    # only the parent's chunks around each change were read again: a few chunks, not the disk
    assert child["read_bytes"] < 1 * MIB, child
    assert 3 <= child["new_chunks"] <= 8, child
    assert child["chunks"] >= parent["chunks"]
    out = tmp_path / "out.raw"
    kiln("snapshot", "export", child["snapshot_id"], str(out))
    assert same_bytes(child_disk, out)
    # the parent is untouched
    kiln("snapshot", "export", parent["snapshot_id"], str(out))
    assert same_bytes(small_disk, out)


def test_child_without_ranges_rereads_but_stores_only_new_chunks(
    kiln, small_disk: Path, tmp_path: Path
) -> None:
    parent = kiln("snapshot", "import", str(small_disk), "--json").json()
    child_disk = tmp_path / "child.raw"
    subprocess.run(["cp", "--sparse=always", str(small_disk), str(child_disk)], check=True)
    _rewrite(child_disk, [(2 * MIB, b"x" * 100)])
    child = kiln(
        "snapshot", "import", str(child_disk), "--parent", parent["snapshot_id"], "--json"
    ).json()
    assert child["read_bytes"] == parent["read_bytes"]
    assert 1 <= child["new_chunks"] <= 3, child
    assert child["new_stored_bytes"] < parent["new_stored_bytes"] / 20
    out = tmp_path / "out.raw"
    kiln("snapshot", "export", child["snapshot_id"], str(out))
    assert same_bytes(child_disk, out)


def test_reimport_of_same_disk_stores_nothing_new(kiln, small_disk: Path) -> None:
    kiln("snapshot", "import", str(small_disk))
    again = kiln("snapshot", "import", str(small_disk), "--json").json()
    assert again["new_chunks"] == 0 and again["new_stored_bytes"] == 0


def test_changed_ranges_source_needs_only_the_changes(
    kiln, small_disk: Path, tmp_path: Path
) -> None:
    """Like EBS changed-block tracking: the source holds only the changed bytes (an overlay's
    allocated clusters); everything else, even around the changes, comes from the parent."""
    parent = kiln("snapshot", "import", str(small_disk), "--json").json()
    writes = [
        (1 * MIB + 123, os.urandom(4096)),
        (10 * MIB + 5000, os.urandom(70_000)),
        (40 * MIB + 8192, b"\0" * 4096),
    ]  # zeroing data is a change too
    expected = tmp_path / "expected.raw"
    subprocess.run(["cp", "--sparse=always", str(small_disk), str(expected)], check=True)
    _rewrite(expected, writes)
    changes_only = tmp_path / "changes.raw"
    with open(changes_only, "wb") as f:
        f.truncate(small_disk.stat().st_size)
    _rewrite(changes_only, writes)
    ranges = tmp_path / "changed.json"
    ranges.write_text(json.dumps([[o, len(d)] for o, d in writes]))
    child = kiln(
        "snapshot",
        "import",
        str(changes_only),
        "--parent",
        parent["snapshot_id"],
        "--changed-ranges",
        str(ranges),
        "--json",
    ).json()
    assert child["read_bytes"] == sum(len(d) for _, d in writes)
    out = tmp_path / "out.raw"
    kiln("snapshot", "export", child["snapshot_id"], str(out))
    assert same_bytes(expected, out)
