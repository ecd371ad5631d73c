"""Scan benchmark (issue 13): the offline scan of an image straight from the store against the
same work over the restored raw disk with ``debugfs`` and over a loop mount with ``find``, in
the same run, on the same image.

- **kiln**: ``kiln.scan.scanner.scan_disk`` over the store's ``SnapshotReader`` (policy
  ``all``, every check); bytes read are what the checks asked of the reader.
- **debugfs**: the snapshot restored to a raw file once (its time reported apart), then
  ``debugfs`` (e2fsprogs, ``FILE?offset=N``) walks the tree with ``ls -p`` one depth per
  invocation (modes, owners: world-writable and SUID), and ``cat`` s the files the checks read.
- **loop mount**: ``losetup -r -o N`` + ``mount -o ro`` (time included), ``find -xdev`` for
  world-writable and SUID files, ``grep -rlI`` for private keys under the same directories,
  ``cat`` of the same files, ``umount``; bytes read are the loop device's sectors read.

Each is run ``--repeat`` times (warm page cache; ``--cold`` drops the caches before each run)
and the median is reported. Loop mounts need root; without it that column is skipped.
Default image: the ``kiln/debian`` base image (``kiln bake debian``, baked into ``--data-dir``
when missing, which downloads Debian packages). ``--raw FILE`` imports a raw disk instead.
Run from the repository root: ``.venv/bin/python -m bench.scan``; writes
bench/results/scan.json. A benchmark, not a test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.machine import describe, machine_info

REGION = "us-east-1"
RESULTS = Path(__file__).parent / "results" / "scan.json"
DEFAULT_DATA_DIR = Path("/var/tmp/kiln-bench/scan-debian")
#: The files the checks read by path (kiln/scan/*_check.py), for debugfs and the mount.
READ_FILES = (
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/ssh/sshd_config",
    "/etc/sysctl.conf",
    "/etc/nftables.conf",
    "/etc/inittab",
)


def _open_services(data_dir: Path) -> Any:
    from kiln.app import build_services
    from kiln.config import Settings

    return build_services(Settings(data_dir=data_dir, regions=(REGION,)), compute=None)


def _find_image(services: Any, data_dir: Path, raw: Path | None) -> tuple[str, str]:
    """(image name, root snapshot id): the kiln/debian image (baked if missing) or ``raw``."""
    from kiln.catalog import images as cat_images
    from kiln.catalog.records import SYSTEM_ACCOUNT_ID
    from kiln.services.scans.scans import root_snapshot_id

    if raw is not None:
        from kiln.disks import raw_disk
        from kiln.types import new_id

        sid = new_id("snap")
        services.stores[REGION].import_disk(raw_disk(raw), sid)
        return raw.name, sid
    from kiln.bake.debian import NAME, VERSION
    from kiln.services.images.base_images import image_name

    name = image_name(NAME, VERSION)
    for attempt in (0, 1):
        with services.catalog.read() as tx:
            image_id = cat_images.live_image_named(tx, REGION, SYSTEM_ACCOUNT_ID, name)
            image = cat_images.get_image(tx, image_id, SYSTEM_ACCOUNT_ID) if image_id else None
        snap = root_snapshot_id(image) if image is not None else None
        if snap:
            return name, snap
        if attempt == 0:
            print("baking the debian image (kiln bake debian; minutes)...", file=sys.stderr)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "kiln",
                    "bake",
                    "debian",
                    "--if-missing",
                    "--region",
                    REGION,
                    "--data-dir",
                    str(data_dir),
                ],
                check=True,
            )
    raise SystemExit("no kiln/debian image in the data dir")


def _drop_caches(cold: bool) -> None:
    if cold and os.geteuid() == 0:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in runs]
    best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**best, "seconds": statistics.median(secs), "runs": secs}


def _timed(fn: Callable[[], dict[str, Any]], repeat: int, cold: bool) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        _drop_caches(cold)
        t0 = time.perf_counter()
        out = fn()
        out["seconds"] = time.perf_counter() - t0
        runs.append(out)
    return _median(runs)


def kiln_scan(services: Any, snap: str) -> dict[str, Any]:
    from kiln.scan.policy import builtin_policy
    from kiln.scan.scanner import scan_disk

    result = scan_disk(services.stores[REGION].reader(snap), builtin_policy("all"))
    return {
        "status": result.status,
        "findings": len(result.findings),
        "bytes_read": result.bytes_read,
        "reads": result.reads,
        "partition": result.partition,
    }


def _debugfs(device: str, commands: list[str]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".cmds") as f:
        f.write("\n".join(commands) + "\n")
        f.flush()
        res = subprocess.run(
            ["debugfs", "-f", f.name, device], capture_output=True, text=True, check=True
        )
    return res.stdout


def debugfs_scan(raw: Path, offset: int) -> dict[str, Any]:
    """The tree by depth with ``ls -p`` (one debugfs run per depth), then the files."""
    device = f"{raw}?offset={offset}"
    level, entries, flagged = ["/"], 0, 0
    while level:
        out = _debugfs(device, [f'ls -p "{d}"' for d in level])
        nxt: list[str] = []
        current = None
        for line in out.splitlines():
            if line.startswith("debugfs:"):
                current = line.split('"')[1] if '"' in line else None
                continue
            parts = line.split("/")
            if len(parts) < 7 or current is None or parts[5] in (".", ".."):
                continue
            entries += 1
            mode = int(parts[2], 8)
            path = current.rstrip("/") + "/" + parts[5]
            if mode & 0o170000 == 0o040000:
                nxt.append(path)
            if mode & 0o002 and mode & 0o170000 != 0o120000 or mode & 0o6000:
                flagged += 1
        level = nxt
    out = _debugfs(device, [f'cat "{p}"' for p in READ_FILES])
    return {"entries": entries, "flagged": flagged, "file_bytes": len(out)}


def _sectors_read(device: str) -> int:
    stat = Path(f"/sys/block/{Path(device).name}/stat")
    return int(stat.read_text().split()[2]) if stat.exists() else 0


def mount_scan(raw: Path, offset: int) -> dict[str, Any]:
    from kiln.scan.secrets_check import KEY_ROOTS

    with tempfile.TemporaryDirectory(prefix="kiln-scan-mnt-") as d:
        mnt = Path(d)
        device = subprocess.run(
            ["losetup", "--find", "--show", "--read-only", "--offset", str(offset), str(raw)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        before = _sectors_read(device)  # the device's counters outlive a detach
        subprocess.run(["mount", "-o", "ro,noload", device, str(mnt)], check=True)
        try:
            found = subprocess.run(
                [
                    "find",
                    str(mnt),
                    "-xdev",
                    "(",
                    "-perm",
                    "-0002",
                    "!",
                    "-type",
                    "l",
                    ")",
                    "-o",
                    "-perm",
                    "/6000",
                    "-type",
                    "f",
                ],
                capture_output=True,
                text=True,
            ).stdout.splitlines()
            roots = [str(mnt / r.lstrip("/")) for r in KEY_ROOTS if (mnt / r.lstrip("/")).exists()]
            keys = subprocess.run(
                ["grep", "-rlIs", "PRIVATE KEY-----", *roots], capture_output=True, text=True
            ).stdout.splitlines()
            data = b"".join(
                (mnt / p.lstrip("/")).read_bytes()
                for p in READ_FILES
                if (mnt / p.lstrip("/")).is_file()
            )
            sectors = _sectors_read(device) - before
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
            subprocess.run(["losetup", "-d", device], check=True)
    return {
        "flagged": len(found),
        "keys": len(keys),
        "file_bytes": len(data),
        "bytes_read": sectors * 512,
    }


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from kiln.scan.partitions import read_partitions

    services = _open_services(args.data_dir)
    try:
        name, snap = _find_image(services, args.data_dir, args.raw)
        store = services.stores[REGION]
        reader = store.reader(snap)
        parts = {p.number: p for p in read_partitions(reader)}
        console.print(f"image {name}, snapshot {snap}: {reader.size / (1 << 20):.0f} MiB disk")
        out: dict[str, Any] = {"image": name, "snapshot": snap, "disk_bytes": reader.size}
        out["kiln"] = _timed(lambda: kiln_scan(services, snap), args.repeat, args.cold)
        if out["kiln"]["status"] != "scanned":
            raise SystemExit(f"the scanner could not read {name}: {out['kiln']}")
        with tempfile.TemporaryDirectory(prefix="kiln-scan-bench-", dir=args.scratch) as d:
            raw = Path(d) / "disk.raw"
            t0 = time.perf_counter()
            store.restore(snap, raw, fmt="raw")
            out["restore_seconds"] = time.perf_counter() - t0
            offset = parts[out["kiln"]["partition"]].start
            out["debugfs"] = _timed(lambda: debugfs_scan(raw, offset), args.repeat, args.cold)
            if os.geteuid() == 0:
                out["mount"] = _timed(lambda: mount_scan(raw, offset), args.repeat, args.cold)
    finally:
        services.catalog.close()
    return out


def report(out: dict[str, Any], console: Console) -> None:
    table = Table(title=f"offline scan of {out['image']} ({out['machine_text']})")
    table.add_column("method")
    table.add_column("seconds (median)", justify="right")
    table.add_column("bytes read", justify="right")
    table.add_column("notes")
    k = out["kiln"]
    table.add_row(
        "kiln scan from the store",
        f"{k['seconds']:.3f}",
        f"{k['bytes_read']:,}",
        f"{k['findings']} findings, {k['reads']} reads, no restore",
    )
    d = out["debugfs"]
    table.add_row(
        "debugfs on the restored raw file",
        f"{d['seconds']:.3f}",
        "—",
        f"+ {out['restore_seconds']:.2f} s restore of {out['disk_bytes']:,} bytes; "
        f"{d['entries']} entries",
    )
    if "mount" in out:
        m = out["mount"]
        table.add_row(
            "loop mount + find (mount time included)",
            f"{m['seconds']:.3f}",
            f"{m['bytes_read']:,}",
            f"+ the same restore; {m['flagged']} world-writable/SUID, {m['keys']} key files",
        )
    console.print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--raw", type=Path, default=None, help="Scan this raw disk instead.")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cold", action="store_true", help="Drop the page cache before each run.")
    p.add_argument("--scratch", type=Path, default=None, help="Where the restored disk goes.")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    info = machine_info()
    out = run(args, console)
    out["machine"], out["machine_text"] = info, describe(info)
    out["repeat"], out["cold"] = args.repeat, args.cold
    report(out, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
