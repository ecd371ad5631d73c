"""Helpers shared by the snapshot / import / copy / export API tests (this module has no tests).

Waiting loops poll the live server until a task or resource leaves its transitional state; the
attempt limit only bounds a hung test, no test asserts on time.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POLL_S = 0.2
MAX_POLLS = 1500  # 5 minutes: a guard against a hang, not a performance assertion
MIB = 1024 * 1024


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    for _ in range(MAX_POLLS):
        value = fetch()
        if done(value):
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"still not done: {value}")


def wait_import_snapshot(ec2: Any, task_id: str) -> dict[str, Any]:
    return poll(
        lambda: ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"][
            0
        ],
        lambda t: t["SnapshotTaskDetail"]["Status"] not in ("active", "deleting"),
    )


def wait_import_image(ec2: Any, task_id: str) -> dict[str, Any]:
    return poll(
        lambda: ec2.describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"][0],
        lambda t: t["Status"] not in ("active", "deleting"),
    )


def wait_export(ec2: Any, task_id: str) -> dict[str, Any]:
    return poll(
        lambda: ec2.describe_export_image_tasks(ExportImageTaskIds=[task_id])["ExportImageTasks"][
            0
        ],
        lambda t: t["Status"] != "active",
    )


def wait_image(ec2: Any, image_id: str) -> dict[str, Any]:
    return poll(
        lambda: ec2.describe_images(ImageIds=[image_id])["Images"][0],
        lambda i: i["State"] != "pending",
    )


def wait_snapshot(ec2: Any, snapshot_id: str) -> dict[str, Any]:
    return poll(
        lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0],
        lambda s: s["State"] != "pending",
    )


def wait_volume(ec2: Any, volume_id: str) -> dict[str, Any]:
    return poll(
        lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0],
        lambda v: v["State"] != "creating",
    )


def patterned_disk(path: Path, size: int = 8 * MIB, seed: str = "kiln") -> Path:
    """A sparse raw disk: a hole-free first MiB, then scattered 64 KiB blocks derived from
    ``seed`` (different seeds share no block), the rest holes."""
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(_block(seed, -1, MIB))
        for n in range(1, size // MIB):
            if n % 3 == 0:
                continue
            f.seek(n * MIB + (n * 4096) % (MIB // 2))
            f.write(_block(seed, n, 64 * 1024))
    return path


def _block(seed: str, n: int, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(f"{seed}/{n}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(MIB), fb.read(MIB)
            if x != y:
                return False
            if not x:
                return True


def to_raw(image: Path, fmt: str, out: Path) -> Path:
    """Convert with the real qemu-img (to compare an exported vmdk/vhd with the source)."""
    subprocess.run(
        ["qemu-img", "convert", "-f", fmt, "-O", "raw", str(image), str(out)], check=True
    )
    return out


def pack_files(data_dir: Path, region: str) -> set[str]:
    """Every pack object in a region's store (chunks live in packs; see storage-format.md)."""
    root = data_dir / "regions" / region / "store" / "packs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


class _Gate:
    def __init__(self) -> None:
        self.open = threading.Event()
        self.halfway = threading.Event()


@contextmanager
def disk_server(files: dict[str, Path], gated: bool = False) -> Iterator[tuple[str, _Gate]]:
    """An HTTP server on loopback serving ``files`` by name. When ``gated``, each response
    stops after half the body until ``gate.open`` is set (a download caught mid-way)."""
    gate = _Gate()
    if not gated:
        gate.open.set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            path = files.get(self.path.lstrip("/"))
            if path is None:
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            half = len(data) // 2
            try:
                self.wfile.write(data[:half])
                self.wfile.flush()
                gate.halfway.set()
                gate.open.wait(300)
                self.wfile.write(data[half:])
            except OSError:
                pass  # the client went away (a killed server)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", gate
    finally:
        gate.open.set()
        server.shutdown()
        server.server_close()


def export_snapshot_cli(kiln: Any, snapshot_id: str, out: Path, region: str) -> Path:
    """`kiln snapshot export` of an unencrypted snapshot (the real CLI over the real store)."""
    res = kiln.kiln(
        "snapshot",
        "export",
        snapshot_id,
        str(out),
        "--region",
        region,
        "--data-dir",
        str(kiln.data_dir),
    )
    assert res.returncode == 0, res.stderr
    return out


def qemu_io_write(image: Path, offset: int, length: int, pattern: int) -> None:
    """Write into a qcow2 volume as a guest would, with the real qemu-io."""
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} {length}", str(image)],
        check=True,
        capture_output=True,
    )


def patch_file(path: Path, offset: int, length: int, pattern: int) -> None:
    with open(path, "r+b") as f:
        os.pwrite(f.fileno(), bytes([pattern]) * length, offset)
