"""Free TCP ports on the host's loopback for the guests' forwarded SSH."""

from __future__ import annotations

import socket
from collections.abc import Collection

from kiln import errors
from kiln.errors import KilnError


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(
    host: str = "127.0.0.1", exclude: Collection[int] = (), attempts: int = 64
) -> int:
    """A port the kernel considers free on ``host``, not in ``exclude`` (ports already promised
    to stopped instances, say). Another process may still take it before QEMU binds it: the
    driver then fails to start with a clear error and the caller picks again."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in exclude:
            return port
    raise KilnError(errors.InsufficientInstanceCapacity, f"no free TCP port on {host}")
