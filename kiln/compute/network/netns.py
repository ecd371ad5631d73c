"""Network namespaces: the commands that shape one, and sockets created inside one.

A namespace is named ``kiln-<vpc-id>`` and lives in ``/run/netns`` (``ip netns add``), so it
outlives the server. Commands run in it with ``ip -n NS`` or ``ip netns exec NS``.

A socket belongs to the network namespace of the thread that created it, for its whole life:
:class:`NetnsThread` is one worker thread that entered a namespace (``setns(2)``) and makes
sockets there on request, so the server needs no helper process inside the namespace. No other
thread of the server ever changes its namespace.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
PREFIX = "kiln-"
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 30.0

T = TypeVar("T")


def ns_name(vpc_id: str, prefix: str = PREFIX) -> str:
    """The namespace of a VPC."""
    return prefix + vpc_id


def ns_path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return ns_path(name).exists()


def vpc_namespaces(prefix: str = PREFIX) -> dict[str, str]:
    """The VPC namespaces with this prefix that exist: vpc id -> namespace name."""
    try:
        names = [p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix + "vpc-")]
    except FileNotFoundError:
        return {}
    return {n[len(prefix) :]: n for n in sorted(names)}


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a host command; its stdout. A failure becomes ``InsufficientInstanceCapacity``
    (the host cannot do what was asked) with the command's own message."""
    try:
        proc = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KilnError(
            errors.InsufficientInstanceCapacity, f"host networking: {argv[0]}: {e}"
        ) from e
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise KilnError(
            errors.InsufficientInstanceCapacity,
            f"host networking: {' '.join(argv[:6])}: {detail[-1] if detail else proc.returncode}",
        )
    return proc.stdout


def ip(name: str, *args: str, check: bool = True) -> str:
    """``ip -n NAME ARGS``."""
    return run(["ip", "-n", name, *args], check=check)


def exec_argv(name: str) -> tuple[str, ...]:
    """The prefix that runs a command inside the namespace."""
    return ("ip", "netns", "exec", name)


def pids(name: str) -> list[int]:
    """The processes whose network namespace is ``name``."""
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


_libc: ctypes.CDLL | None = None


def _setns(fd: int, nstype: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _enter(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


class NetnsThread:
    """One thread inside a namespace, running calls there (``call``) — most usefully making
    sockets that then work from any thread. ``close`` ends the thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        if not exists(name):
            raise KilnError(
                errors.InsufficientInstanceCapacity, f"network namespace {name} does not exist"
            )
        self._pool = ThreadPoolExecutor(
            1, thread_name_prefix=f"netns-{name}", initializer=_enter, initargs=(ns_path(name),)
        )

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        return self._pool.submit(fn)

    def call(self, fn: Callable[[], T]) -> T:
        return self.submit(fn).result()

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> socket.socket:
        """A new socket in the namespace."""
        return self.call(lambda: socket.socket(family, type))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
