"""Bad input: one clear line on stderr, non-zero exit, nothing marked complete, store verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_helpers import make_disk, qemu_img


def _assert_refused(kiln, src: Path, *words: str) -> None:
    r = kiln("snapshot", "import", str(src), check=False)
    assert r.rc != 0, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err
    for w in words:
        assert w in lines[0].lower(), lines[0]
    assert kiln("snapshot", "ls", "--json").json() == []
    assert kiln("store", "verify", "--json").json()["ok"] is True


def test_not_a_disk_image(kiln, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("this is not a disk\n")
    _assert_refused(kiln, f, "not a disk image")


def test_missing_path(kiln, tmp_path: Path) -> None:
    _assert_refused(kiln, tmp_path / "nope.raw", "no such file")


def test_qcow2_with_backing_file_is_refused(kiln, tmp_path: Path) -> None:
    base = make_disk(tmp_path / "base.raw", 1 << 20, [(0, b"secret host data")])
    ov = tmp_path / "ov.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "raw", str(ov))
    _assert_refused(kiln, ov, "backing")


def test_qcow2_with_external_data_file_is_refused(kiln, tmp_path: Path) -> None:
    ov = tmp_path / "ext.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.bin'}", str(ov), "1M")
    _assert_refused(kiln, ov, "data file")


def test_truncated_qcow2_is_refused(kiln, tmp_path: Path) -> None:
    raw = make_disk(tmp_path / "d.raw", 8 << 20, [(0, os.urandom(6 << 20))])
    q = tmp_path / "d.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(q))
    with open(q, "r+b") as f:
        f.truncate(q.stat().st_size // 2)
    _assert_refused(kiln, q)


@pytest.mark.parametrize(
    ("store_mib", "data_mib"), [(6, 24), (80, 160)], ids=["threads", "worker-processes"]
)
def test_full_disk_during_import(
    kiln, tmp_path: Path, data_dir: Path, store_mib: int, data_mib: int
) -> None:
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={store_mib}m", "tmpfs", str(data_dir)]
        ).returncode
        != 0
    ):
        pytest.skip(
            "cannot mount a small tmpfs here (needs root): the full-disk case is not exercised"
        )
    try:
        small = make_disk(tmp_path / "small.raw", 1 << 20, [(0, os.urandom(300_000))])
        kiln("snapshot", "import", str(small))  # something already stored must survive
        big = make_disk(
            tmp_path / "big.raw", (data_mib + 8) << 20, [(0, os.urandom(data_mib << 20))]
        )
        r = kiln("snapshot", "import", str(big), check=False)
        assert r.rc != 0 and len(r.err.strip().splitlines()) == 1 and "space" in r.err, r.err
        rows = kiln("snapshot", "ls", "--json").json()
        assert len(rows) == 1  # only the small one, complete
        assert kiln("store", "verify", "--json").json()["ok"] is True
        out = tmp_path / "out.raw"
        kiln("snapshot", "export", rows[0]["SnapshotId"], str(out))
        assert out.read_bytes() == small.read_bytes()
    finally:
        subprocess.run(["umount", "-l", str(data_dir)])


def _descendants(pid: int) -> list[int]:
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        me = todo.pop()
        kids = [c for c, pp in parent.items() if pp == me]
        out += kids
        todo += kids
    return out


def test_import_killed_midway_then_rerun(tmp_path: Path, data_dir: Path, kiln) -> None:
    disk = make_disk(tmp_path / "big.raw", 600 << 20, [(0, os.urandom(512 << 20))])
    sid = "snap-0123456789abcdef0"
    packs_dir = data_dir / "regions/us-east-1/store/packs"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiln",
            "snapshot",
            "import",
            str(disk),
            "--snapshot-id",
            sid,
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if packs_dir.exists() and sum(1 for p in packs_dir.rglob("*") if p.is_file()) >= 3:
            break
        time.sleep(0.01)
    helpers = _descendants(p.pid)  # the store's worker processes (and their fork server)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert helpers, "a 512 MiB import runs in worker processes"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{h}").exists() for h in helpers):
        time.sleep(0.05)
    assert not [h for h in helpers if Path(f"/proc/{h}").exists()], (
        "worker processes outlived the import"
    )
    assert kiln("snapshot", "ls", "--json").json() == []  # nothing marked complete
    assert kiln("store", "verify", "--json").json()["ok"] is True  # no corrupt chunk
    res = kiln("snapshot", "import", str(disk), "--snapshot-id", sid, "--json").json()
    assert res["snapshot_id"] == sid
    assert res["new_chunks"] < res["chunks"]  # chunks written before the kill were reused
    out = tmp_path / "out.raw"
    kiln("snapshot", "export", sid, str(out))
    assert out.read_bytes() == disk.read_bytes()
