"""One Kiln store operation in its own process, so the benchmark can read its peak RSS.

    python bench/kiln_op.py import STORE FILE SNAP [--parent SNAP] [--changed RANGES.json]
    python bench/kiln_op.py restore STORE SNAP OUT

Prints one JSON line: the ImportResult (or the restore's seconds), with ``op_seconds`` timed
around the store call only (interpreter start-up and imports excluded). Run as a script, so
``PYTHONPATH`` can point it at another kiln tree (``bench.store --kiln-src``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from kiln.store import open_store
from kiln.types import Extent


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

    store = open_store(args.store)
    out: dict[str, object]
    if args.op == "import":
        changed = None
        if args.changed:
            changed = [Extent(int(o), int(n)) for o, n in json.loads(args.changed.read_text())]
        t0 = time.perf_counter()
        result = store.import_disk(args.file, snapshot_id=args.snapshot, parent=args.parent,
                                   changed=changed)
        out = dataclasses.asdict(result)
        out["op_seconds"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        store.restore(args.snapshot, args.out, fmt="raw")
        out = {"op_seconds": time.perf_counter() - t0}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
