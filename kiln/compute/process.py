"""Watching and stopping processes we did not (or no longer) parent, through /proc.

QEMU runs daemonized, so after a ``kiln serve`` restart the server is not its parent: it can
neither ``waitpid`` it nor trust a bare pid (pids are reused). A process counts as ours only if
``/proc/PID/cmdline`` matches; an exited process that nobody has reaped yet (a zombie) counts as
gone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

POLL = 0.05


def read_pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile``, or None if it is missing or not a number."""
    try:
        text = pidfile.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live (not zombie) process, or None."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state = stat.rpartition(")")[2].split()[0] if ")" in stat else "?"
    if state in ("Z", "X") or not raw:
        return None
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]


def wait_gone(pid: int, timeout: float, is_ours: Callable[[int], bool]) -> bool:
    """Poll until ``is_ours(pid)`` is false; True if that happened within ``timeout``."""
    deadline = time.monotonic() + timeout
    while is_ours(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Send ``sig``; a process that already exited is not an error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
