"""One Kiln store operation in its own process, so the benchmark can read its peak RSS.

    python bench/kiln_op.py import STORE FILE SNAP [--parent SNAP] [--changed RANGES.json]
    python bench/kiln_op.py restore STORE SNAP OUT

Prints one JSON line: the ImportResult (or the restore's seconds), with ``op_seconds`` timed
around the store call only (interpreter start-up and imports excluded), and what a sampler
thread saw of this process's descendants (the store's worker processes, which GNU time does
not count because this process never waits for them): ``tree_peak_rss`` (bytes, this process
plus every descendant, summed at each 20 ms sample) and ``workers_cpu_seconds``. Run as a script, so
``PYTHONPATH`` can point it at another kiln tree (``bench.store --kiln-src``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import threading
import time
from pathlib import Path

from kiln.disks import inspect_disk
from kiln.store import open_store

try:  # the store as of issue 9 (URLs, inspected disks); --kiln-src may name an older one
    from kiln.store import file_url

    NEW_API = True
except ImportError:
    NEW_API = False
from kiln.types import Extent

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            continue
    return out


class TreeSampler(threading.Thread):
    """Peak summed RSS of this process and its descendants; CPU time of the descendants."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.02):
            total = 0
            for pid in [me, *_descendants(me)]:
                try:
                    with open(f"/proc/{pid}/statm") as f:
                        total += int(f.read().split()[1]) * PAGE
                    if pid != me:
                        with open(f"/proc/{pid}/stat") as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                        self.cpu[pid] = (int(fields[11]) + int(fields[12])) / TICK
                except (OSError, IndexError, ValueError):
                    continue
            self.peak = max(self.peak, total)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="op", required=True)
    imp = sub.add_parser("import")
    imp.add_argument("store", type=Path)
    imp.add_argument("file", type=Path)
    imp.add_argument("snapshot")
    imp.add_argument("--parent")
    imp.add_argument("--changed", type=Path, help="JSON list of [offset, length]")
    res = sub.add_parser("restore")
    res.add_argument("store", type=Path)
    res.add_argument("snapshot")
    res.add_argument("out", type=Path)
    args = ap.parse_args()

    store = open_store(file_url(args.store) if NEW_API else args.store)
    out: dict[str, object]
    sampler = TreeSampler()
    sampler.start()
    if args.op == "import":
        changed = None
        if args.changed:
            changed = [Extent(int(o), int(n)) for o, n in json.loads(args.changed.read_text())]
        t0 = time.perf_counter()
        source = inspect_disk(args.file) if NEW_API else args.file
        result = store.import_disk(
            source, snapshot_id=args.snapshot, parent=args.parent, changed=changed
        )
        out = dataclasses.asdict(result)
        out["op_seconds"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        store.restore(args.snapshot, args.out, fmt="raw")
        out = {"op_seconds": time.perf_counter() - t0}
    sampler.stop.set()
    sampler.join()
    out["tree_peak_rss"] = sampler.peak
    out["workers_cpu_seconds"] = round(sum(sampler.cpu.values()), 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
