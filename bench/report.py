"""The store benchmark's table: one row per measurement, one column per tool, targets beside."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from bench.images import MiB

Result = dict[str, object]
TOOLS = ("kiln", "restic", "borg", "qemu-img")


def _num(r: Result, key: str) -> float:
    return float(str(r[key]))


def _gbps(r: Result) -> str:
    return f"{_num(r, 'gbps'):.2f} GB/s ({_num(r, 'seconds'):.1f} s)"


def _new(r: Result) -> str:
    return f"{_num(r, 'new') / MiB:.1f} MiB ({_num(r, 'seconds'):.1f} s)"


def _stored(r: Result) -> str:
    return f"{_num(r, 'stored') / MiB:.0f} MiB"


def _restore(r: Result) -> str:
    return _gbps(r) + ("" if r.get("exact") else " NOT EXACT")


# (label, op, cell formatter, target key, higher is better, value used against the target)
ROWS: list[
    tuple[str, str, Callable[[Result], str], str | None, bool, Callable[[Result], float]]
] = [
    ("full import", "full", _gbps, "full_gbps", True, lambda r: _num(r, "gbps")),
    ("stored after full import", "full", _stored, None, False, lambda r: _num(r, "stored")),
    (
        "re-import (all chunks present)",
        "reimport",
        _gbps,
        "reimport_gbps",
        True,
        lambda r: _num(r, "gbps"),
    ),
    ("incremental, re-read: new", "incr", _new, "incr_mib", False, lambda r: _num(r, "new") / MiB),
    (
        "incremental, changed ranges: new",
        "incr_changed",
        _new,
        "incr_mib",
        False,
        lambda r: _num(r, "new") / MiB,
    ),
    ("reordered: new", "reordered", _new, "reordered_mib", False, lambda r: _num(r, "new") / MiB),
    ("restore", "restore", _restore, "restore_gbps", True, lambda r: _num(r, "gbps")),
]


def _target_text(key: str, value: float) -> str:
    return f"≥ {value:g} GB/s" if key.endswith("gbps") else f"≤ {value:.0f} MiB"


def print_table(console: Console, out: Result) -> None:
    results = out["results"]
    targets = out["targets"]
    assert isinstance(results, dict) and isinstance(targets, dict)
    tools = [t for t in TOOLS if t in results]
    t = Table(title="Store benchmark (warm page cache)")
    t.add_column("measurement")
    t.add_column("target")
    for name in tools:
        t.add_column(name, justify="right")
    for label, op, fmt, tkey, higher, value in ROWS:
        cells = []
        for name in tools:
            r = results[name].get(op)
            if r is None:
                cells.append("—")
                continue
            cell = fmt(r)
            if name == "kiln" and tkey is not None:
                ok = value(r) >= targets[tkey] if higher else value(r) <= targets[tkey]
                cell = f"[green]{cell} ✓[/]" if ok else f"[red]{cell} ✗[/]"
            cells.append(cell)
        t.add_row(label, _target_text(tkey, targets[tkey]) if tkey else "", *cells)
    rss_cells = []
    for name in tools:
        peak = max(_num(r, "max_rss_mib") for r in results[name].values())
        cell = f"{peak:.0f} MiB"
        if name == "kiln":
            cell = f"[green]{cell} ✓[/]" if peak <= targets["rss_mib"] else f"[red]{cell} ✗[/]"
        rss_cells.append(cell)
    t.add_row("peak RSS (max over steps)", f"≤ {targets['rss_mib']} MiB", *rss_cells)
    console.print(t)
    for name in tools:
        cpu = ", ".join(f"{op} {_num(r, 'cpu_seconds'):.1f}" for op, r in results[name].items())
        console.print(f"CPU seconds (user+sys) {name}: {cpu}")
    if "kiln" in results:
        walls = ", ".join(
            f"{op} {_num(r, 'wall_seconds'):.2f} s" for op, r in results["kiln"].items()
        )
        console.print(
            f"Kiln times are the store call alone; whole process (start-up included): {walls}"
        )
