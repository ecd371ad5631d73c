"""Store benchmark (issue 2, item 5): Kiln's store side by side with restic, borg and qemu-img.

On the images of bench/images.py (2 GiB; ``--quick``: 256 MiB), warm page cache, each tool a
child process (wall time and peak RSS from ``os.wait4``):

- full import of base.raw into a fresh store/repository (GB/s = logical size / seconds);
- re-import of the same file (every chunk present; restic ``--force``, borg files cache off);
- incremental: incr.raw (1% of 4 KiB blocks rewritten) — new bytes stored (growth of the
  store's file sizes) and time; Kiln with the parent, re-reading everything and with ``changed``;
- reordered.raw (same files, other layout): new bytes stored;
- restore of the base snapshot to a raw file (bit-exactness checked with cmp, untimed).

Each second import starts from a copy of the state right after the full import, so every "new
bytes" number is relative to a store holding base only. Run from the repository root:
``.venv/bin/python -m bench.store [--quick] [--only kiln]``; writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from bench import tools
from bench.ceilings import measure_ceilings
from bench.images import DEFAULT_CACHE, BenchImages, GiB, MiB, build_images, settle, warm
from bench.machine import describe, machine_info
from bench.report import TOOLS, print_table
from kiln.types import new_id

RESULTS = Path(__file__).parent / "results"
Result = dict[str, object]


def _targets(size: int) -> dict[str, float]:
    scale = size / (2 * GiB)  # byte targets are for the 2 GiB image
    return {
        "full_gbps": 0.7,
        "reimport_gbps": 1.5,
        "incr_mib": 130 * scale,
        "reordered_mib": 160 * scale,
        "restore_gbps": 1.0,
        "rss_mib": 256,
    }


def _rate(size: int, seconds: float) -> float:
    return round(size / seconds / 1e9, 3)


def _step(r: tools.Run, size: int, seconds: float | None = None, **extra: object) -> Result:
    s = r.seconds if seconds is None else seconds
    return {
        "seconds": round(s, 3),
        "wall_seconds": round(r.seconds, 3),
        "gbps": _rate(size, s),
        "cpu_seconds": round(r.cpu_seconds, 3),
        "max_rss_mib": round(r.max_rss / MiB, 1),
        "load": os.getloadavg()[0],
        **extra,
    }


def _kiln(*args: str) -> tuple[tools.Run, dict[str, object]]:
    """tools.kiln, with the store's worker processes counted: peak RSS is the larger of GNU
    time's (the main process) and the sampled sum over the process tree; CPU adds the workers'."""
    r, res = tools.kiln(*args)
    tree = int(str(res.get("tree_peak_rss", 0)))
    workers = float(str(res.get("workers_cpu_seconds", 0.0)))
    return tools.Run(r.seconds, r.cpu_seconds + workers, max(r.max_rss, tree), r.stdout), res


def bench_kiln(imgs: BenchImages, work: Path) -> dict[str, Result]:
    out: dict[str, Result] = {}
    main = work / "kiln"
    base_snap = new_id("snap")
    settle(imgs.base)
    r, res = _kiln("import", str(main), str(imgs.base), base_snap)
    stored, files = tools.tree_bytes(main)
    out["full"] = _step(
        r, imgs.size, float(str(res["op_seconds"])), stored=stored, files=files, result=res
    )
    forks = {name: work / f"kiln-{name}" for name in ("incr", "incr_changed", "reordered")}
    for fork in forks.values():
        tools.fork_dir(main, fork)
    changed = work / "changed.json"
    changed.write_text(json.dumps(imgs.changed))
    settle(imgs.base)
    r, res = _kiln("import", str(main), str(imgs.base), new_id("snap"))
    out["reimport"] = _step(
        r,
        imgs.size,
        float(str(res["op_seconds"])),
        new=tools.tree_bytes(main)[0] - stored,
        result=res,
    )
    for name, image, extra in (
        ("incr", imgs.incr, ["--parent", base_snap]),
        ("incr_changed", imgs.incr, ["--parent", base_snap, "--changed", str(changed)]),
        ("reordered", imgs.reordered, []),
    ):
        settle(image)
        r, res = _kiln("import", str(forks[name]), str(image), new_id("snap"), *extra)
        out[name] = _step(
            r,
            imgs.size,
            float(str(res["op_seconds"])),
            new=tools.tree_bytes(forks[name])[0] - stored,
            result=res,
        )
        shutil.rmtree(forks[name])
    dest = work / "kiln-restore.raw"
    settle(main)
    r, res = _kiln("restore", str(main), base_snap, str(dest))
    out["restore"] = _step(
        r, imgs.size, float(str(res["op_seconds"])), exact=tools.same_bytes(dest, imgs.base)
    )
    dest.unlink()
    return out


def bench_restic(imgs: BenchImages, work: Path) -> dict[str, Result]:
    out: dict[str, Result] = {}
    main = work / "restic"
    tools.restic(main, "init", "--repository-version", "2")
    repo0 = tools.tree_bytes(main / "repo")[0]
    settle(imgs.base)
    r, snap = tools.restic_backup(main, imgs.base)
    stored, files = tools.tree_bytes(main / "repo")
    out["full"] = _step(r, imgs.size, stored=stored - repo0, files=files)
    forks = {name: work / f"restic-{name}" for name in ("incr", "reordered")}
    for fork in forks.values():
        tools.fork_dir(main, fork)
    settle(imgs.base)
    r, _ = tools.restic_backup(main, imgs.base, "--force")
    out["reimport"] = _step(r, imgs.size, new=tools.tree_bytes(main / "repo")[0] - stored)
    for name, image in (("incr", imgs.incr), ("reordered", imgs.reordered)):
        settle(image)
        r, _ = tools.restic_backup(forks[name], image)
        out[name] = _step(r, imgs.size, new=tools.tree_bytes(forks[name] / "repo")[0] - stored)
        shutil.rmtree(forks[name])
    target = work / "restic-restore"
    settle(main)
    r = tools.restic(main, "restore", snap, "--target", str(target))
    restored = target / str(imgs.base).lstrip("/")
    out["restore"] = _step(r, imgs.size, exact=tools.same_bytes(restored, imgs.base))
    shutil.rmtree(target)
    return out


def bench_borg(imgs: BenchImages, work: Path) -> dict[str, Result]:
    out: dict[str, Result] = {}
    main = work / "borg"
    main.mkdir()
    tools.borg(main, "init", "-e", "none")
    repo0 = tools.tree_bytes(main / "repo")[0]
    create = ["create", "--compression", "zstd,1"]
    settle(imgs.base)
    r = tools.borg(main, *create, "::base", str(imgs.base))
    stored, files = tools.tree_bytes(main / "repo")
    out["full"] = _step(r, imgs.size, stored=stored - repo0, files=files)
    forks = {name: work / f"borg-{name}" for name in ("incr", "reordered")}
    for fork in forks.values():
        tools.fork_dir(main, fork)
    settle(imgs.base)
    r = tools.borg(main, *create, "--files-cache", "disabled", "::again", str(imgs.base))
    out["reimport"] = _step(r, imgs.size, new=tools.tree_bytes(main / "repo")[0] - stored)
    for name, image in (("incr", imgs.incr), ("reordered", imgs.reordered)):
        settle(image)
        r = tools.borg(forks[name], *create, f"::{name}", str(image))
        out[name] = _step(r, imgs.size, new=tools.tree_bytes(forks[name] / "repo")[0] - stored)
        shutil.rmtree(forks[name])
    target = work / "borg-restore"
    target.mkdir()
    settle(main)
    r = tools.borg(main, "extract", "::base", cwd=target)
    restored = target / str(imgs.base).lstrip("/")
    out["restore"] = _step(r, imgs.size, exact=tools.same_bytes(restored, imgs.base))
    shutil.rmtree(target)
    return out


def bench_qemu_img(imgs: BenchImages, work: Path) -> dict[str, Result]:
    out: dict[str, Result] = {}
    qcow = work / "base.qcow2"
    settle(imgs.base)
    r = tools.run(
        [
            "qemu-img",
            "convert",
            "-O",
            "qcow2",
            "-c",
            "-o",
            "compression_type=zstd",
            str(imgs.base),
            str(qcow),
        ]
    )
    out["full"] = _step(r, imgs.size, stored=qcow.stat().st_size, files=1)
    dest = work / "qemu-restore.raw"
    settle(qcow)
    r = tools.run(["qemu-img", "convert", "-O", "raw", str(qcow), str(dest)])
    out["restore"] = _step(r, imgs.size, exact=tools.same_bytes(dest, imgs.base))
    qcow.unlink()
    dest.unlink()
    return out


BENCHES: dict[str, Callable[[BenchImages, Path], dict[str, Result]]] = {
    "kiln": bench_kiln,
    "restic": bench_restic,
    "borg": bench_borg,
    "qemu-img": bench_qemu_img,
}


def run(quick: bool, cache: Path, only: list[str], console: Console) -> Result:
    size = 256 * MiB if quick else 2 * GiB
    imgs = build_images(cache, size, say=console.print)
    info = machine_info()
    console.print(f"machine: {describe(info)}")
    work = cache / f"run-{size // MiB}M"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    results: dict[str, dict[str, Result]] = {}
    warm(imgs.base)
    ceilings = [measure_ceilings(imgs.base)]
    console.print(f"one-thread ceilings now (GB/s): {ceilings[0]}")
    try:
        for name in only:
            console.print(f"[bold]{name}[/] (load {os.getloadavg()[0]:.2f}) ...")
            results[name] = BENCHES[name](imgs, work)
            for op, r in results[name].items():
                console.print(
                    f"  {op}: {json.dumps({k: v for k, v in r.items() if k != 'result'})}"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ceilings.append(measure_ceilings(imgs.base))
    console.print(f"one-thread ceilings at the end (GB/s): {ceilings[1]}")
    return {
        "machine": info,
        "load_after": os.getloadavg(),
        "quick": quick,
        "ceilings": ceilings,
        "image": {
            "size": imgs.size,
            "files": imgs.files,
            "file_bytes": imgs.file_bytes,
            "changed_ranges": len(imgs.changed),
            "changed_bytes": imgs.changed_bytes,
        },
        "targets": _targets(size),
        "results": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 MiB images (smoke run)")
    ap.add_argument(
        "--only", action="append", choices=TOOLS, help="run only this tool (repeatable)"
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--kiln-src",
        type=Path,
        default=None,
        help="benchmark the kiln package in this directory (e.g. a `git archive` of a commit)",
    )
    args = ap.parse_args()
    tools.KILN_SRC = args.kiln_src
    console = Console(width=200)
    out = run(args.quick, args.cache, args.only or list(TOOLS), console)
    print_table(console, out)
    path = args.out or RESULTS / ("store-quick.json" if args.quick else "store.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
