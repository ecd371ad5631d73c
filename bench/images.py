"""The benchmark's disk images: real ext4 filesystems full of real files, cached on disk.

Three raw images of the same size are built (``python -m bench.images`` builds them alone):

- ``base.raw``: an ext4 filesystem (``mke2fs -t ext4 -d DIR``, no mounts) holding ~80% of its
  size (65% under 1 GiB) in regular files copied from /usr (a deterministic, uniform sample by path hash);
- ``incr.raw``: ``base.raw`` with 1% of the image's 4 KiB blocks rewritten at random positions
  with random bytes (seeded); ``changed.json`` lists the rewritten ranges, merged;
- ``reordered.raw``: the same files with every directory entry renamed to ``<hash>_<name>``, so
  ``mke2fs -d`` (which sorts entries) lays them out in a different order.

Images are cached under ``<cache>/<size>M/`` and reused when ``params.json`` matches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("/var/tmp/kiln-bench")
GiB = 1 << 30
MiB = 1 << 20
BLOCK = 4096
FORMAT_VERSION = 2  # bump when the way images are built changes
SOURCES = (Path("/usr"), Path("/var/cache/apt"), Path("/lib/modules"))
FILL = 0.8  # fraction of the image filled with file data (1.6 GiB of 2 GiB)
FILL_SMALL = 0.65  # under 1 GiB: 4 KiB blocks, inode tables and journal take a larger share
REWRITE = 0.01  # fraction of 4 KiB blocks rewritten for incr.raw
SEED = 20240601
UUID = "6b696c6e-6265-6e63-6800-000000000001"
FAKE_TIME = "1700000000"  # E2FSPROGS_FAKE_TIME: reproducible timestamps in the superblock


@dataclass(frozen=True, slots=True)
class BenchImages:
    size: int  # virtual size of every image, bytes
    file_bytes: int  # bytes of regular-file data copied in
    files: int
    base: Path
    incr: Path
    reordered: Path
    changed: tuple[tuple[int, int], ...]  # (offset, length) ranges rewritten in incr.raw

    @property
    def changed_bytes(self) -> int:
        return sum(length for _, length in self.changed)


def _fill(size: int) -> float:
    return FILL if size >= GiB else FILL_SMALL


def _params(size: int) -> dict[str, object]:
    return {
        "version": FORMAT_VERSION,
        "size": size,
        "fill": _fill(size),
        "rewrite": REWRITE,
        "seed": SEED,
        "sources": [str(s) for s in SOURCES],
    }


def _path_key(path: str) -> bytes:
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()


def _candidate_files(src: Path, max_file: int) -> list[tuple[bytes, str, int]]:
    """Every regular file under `src` as (sort key, path, size), in path-hash order."""
    out: list[tuple[bytes, str, int]] = []
    for dirpath, _dirnames, filenames in os.walk(src):
        for name in filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if st.st_mode & 0o170000 != 0o100000 or st.st_size == 0 or st.st_size > max_file:
                continue
            out.append((_path_key(p), p, st.st_size))
    out.sort()
    return out


def _stage_files(staging: Path, target: int) -> tuple[int, int]:
    """Copy a uniform sample of real files (by path hash) into staging until `target` bytes.

    /usr first; the other SOURCES only when /usr holds too little.
    """
    chosen: list[tuple[str, int]] = []
    seen: set[str] = set()
    total = 0
    for src in SOURCES:
        if total >= target or not src.is_dir() or str(src.resolve()) in seen:
            continue
        seen.add(str(src.resolve()))
        for _key, path, size in _candidate_files(src, max_file=max(target // 16, MiB)):
            if total >= target:
                break
            chosen.append((path, size))
            total += size
    if total < target:
        log.warning("only %d MiB of files available (wanted %d MiB)", total // MiB, target // MiB)
    chosen.sort()  # copy in path order: the staging tree mirrors the source tree
    copied = 0
    for path, _size in chosen:
        dst = staging / path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(path, dst)
            shutil.copymode(path, dst)
        except OSError as e:  # vanished or unreadable: skip it, the sample stays real files
            log.warning("skip %s: %s", path, e)
            continue
        copied += dst.stat().st_size
    return copied, len(chosen)


def _renamed(name: str, rel: str) -> str:
    return f"{hashlib.blake2b(rel.encode('utf-8', 'surrogateescape'), digest_size=3).hexdigest()}_{name}"


def _stage_reordered(staging: Path, reordered: Path) -> None:
    """Hard-link every staged file into a tree where each entry is renamed `<hash>_<name>`."""
    for dirpath, _dirnames, filenames in os.walk(staging):
        rel_dir = os.path.relpath(dirpath, staging)
        parts = [] if rel_dir == "." else rel_dir.split(os.sep)
        new_parts = [_renamed(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]
        out_dir = reordered.joinpath(*new_parts)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            rel = "/".join([*parts, name])
            os.link(os.path.join(dirpath, name), out_dir / _renamed(name, rel))


def _mke2fs(staging: Path, image: Path, size: int) -> None:
    image.unlink(missing_ok=True)
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=FAKE_TIME)
    subprocess.run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-L",
            "kiln-bench",
            "-U",
            UUID,
            "-E",
            f"hash_seed={UUID},root_owner=0:0",
            "-d",
            str(staging),
            str(image),
            f"{size // 1024}k",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _rewrite_blocks(base: Path, incr: Path, size: int) -> list[tuple[int, int]]:
    """Copy base to incr (sparse) and overwrite REWRITE of its 4 KiB blocks with random bytes."""
    incr.unlink(missing_ok=True)
    subprocess.run(["cp", "--sparse=always", str(base), str(incr)], check=True)
    rng = random.Random(SEED)
    nblocks = size // BLOCK
    picks = sorted(rng.sample(range(nblocks), round(nblocks * REWRITE)))
    fd = os.open(incr, os.O_WRONLY)
    try:
        for b in picks:
            os.pwrite(fd, rng.randbytes(BLOCK), b * BLOCK)
        os.fsync(fd)
    finally:
        os.close(fd)
    ranges: list[tuple[int, int]] = []
    for b in picks:
        if ranges and ranges[-1][0] + ranges[-1][1] == b * BLOCK:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + BLOCK)
        else:
            ranges.append((b * BLOCK, BLOCK))
    return ranges


def build_images(
    cache: Path = DEFAULT_CACHE, size: int = 2 * GiB, say: Callable[[str], None] = print
) -> BenchImages:
    """Build (or reuse from `cache`) the three benchmark images of `size` bytes."""
    d = cache / f"{size // MiB}M"
    params_file = d / "params.json"
    params = _params(size)
    if params_file.exists():
        saved = json.loads(params_file.read_text())
        if saved.get("params") == params and all(
            (d / n).exists() for n in ("base.raw", "incr.raw", "reordered.raw")
        ):
            return _load(d, saved)
    say(f"building benchmark images in {d} (once; reused later)")
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    t0 = time.monotonic()
    staging, staging_r = d / "staging", d / "staging-reordered"
    file_bytes, files = _stage_files(staging, int(size * _fill(size)))
    say(f"  staged {files} files, {file_bytes / MiB:.0f} MiB ({time.monotonic() - t0:.1f} s)")
    _mke2fs(staging, d / "base.raw", size)
    say(f"  base.raw ({time.monotonic() - t0:.1f} s)")
    _stage_reordered(staging, staging_r)
    _mke2fs(staging_r, d / "reordered.raw", size)
    say(f"  reordered.raw ({time.monotonic() - t0:.1f} s)")
    shutil.rmtree(staging_r)
    shutil.rmtree(staging)
    changed = _rewrite_blocks(d / "base.raw", d / "incr.raw", size)
    (d / "changed.json").write_text(json.dumps(changed))
    say(
        f"  incr.raw: {len(changed)} ranges, {sum(n for _, n in changed) / MiB:.1f} MiB rewritten "
        f"({time.monotonic() - t0:.1f} s)"
    )
    saved = {"params": params, "file_bytes": file_bytes, "files": files}
    params_file.write_text(json.dumps(saved, indent=1))
    return _load(d, saved)


def _load(d: Path, saved: dict[str, object]) -> BenchImages:
    changed = tuple((int(o), int(n)) for o, n in json.loads((d / "changed.json").read_text()))
    params = saved["params"]
    assert isinstance(params, dict)
    return BenchImages(
        size=int(params["size"]),
        file_bytes=int(str(saved["file_bytes"])),
        files=int(str(saved["files"])),
        base=d / "base.raw",
        incr=d / "incr.raw",
        reordered=d / "reordered.raw",
        changed=changed,
    )


def data_extents(path: Path) -> list[tuple[int, int]]:
    """The file's data ranges (offset, length) from SEEK_DATA / SEEK_HOLE."""
    out: list[tuple[int, int]] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after pos
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, stop - start))
            pos = stop
    finally:
        os.close(fd)
    return out


def settle(*paths: Path) -> None:
    """Start a step from the same state for every tool: the previous step's dirty pages written
    out (``sync``), the page cache emptied (root only), then only this step's inputs read back
    in (files and whole directory trees). On these hosts the writeback and page reclaim left by
    a previous step otherwise land in the next step's time, by seconds."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        pass
    for path in paths:
        if path.is_dir():
            for dirpath, _dirs, names in os.walk(path):
                for n in names:
                    with open(os.path.join(dirpath, n), "rb") as f:
                        while f.read(8 * MiB):
                            pass
        else:
            warm(path)


def warm(path: Path) -> None:
    """Read the file's data once so it sits in the page cache."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 * MiB)
        for off, length in data_extents(path):
            f.seek(off)
            left = length
            while left > 0:
                n = f.readinto(memoryview(buf)[: min(left, len(buf))])
                if not n:
                    break
                left -= n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--quick", action="store_true", help="256 MiB images instead of 2 GiB")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    imgs = build_images(args.cache, 256 * MiB if args.quick else 2 * GiB)
    print(
        json.dumps(
            {
                "size": imgs.size,
                "files": imgs.files,
                "file_bytes": imgs.file_bytes,
                "changed_ranges": len(imgs.changed),
                "changed_bytes": imgs.changed_bytes,
                "base": str(imgs.base),
                "incr": str(imgs.incr),
                "reordered": str(imgs.reordered),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
