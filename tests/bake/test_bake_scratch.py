"""A bake's scratch directory is removed without deleting through what an interrupted
mmdebstrap left mounted in it (as root, mmdebstrap binds the host's /dev into the rootfs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kiln.bake.tools import mounts_under, remove_scratch


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_remove_scratch_unmounts_before_deleting(tmp_path: Path) -> None:
    host = tmp_path / "host-shm"
    host.mkdir()
    (host / "PostgreSQL.1234").write_text("a segment")
    scratch = tmp_path / "bake-debian-x"
    inside = scratch / "rootfs" / "dev" / "shm"
    inside.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(host), str(inside)], check=True)
    try:
        assert mounts_under(scratch) == [inside.resolve()]
        remove_scratch(scratch)
    finally:
        subprocess.run(["umount", "--lazy", str(inside)], capture_output=True, check=False)
    assert not scratch.exists()
    assert (host / "PostgreSQL.1234").read_text() == "a segment"
