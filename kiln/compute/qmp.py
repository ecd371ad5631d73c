"""A minimal QMP (QEMU Machine Protocol) client over the VM's unix socket.

Only what the driver needs: connect, negotiate capabilities, run a command, read events.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

QMP_SOCKET = "qmp.sock"


@dataclass(frozen=True, slots=True)
class QmpEvent:
    name: str
    data: dict[str, object]


class QmpError(Exception):
    """The socket is gone, the connection dropped, or QEMU answered a command with an error."""


class Qmp:
    """One QMP session. ``run_dir`` holds the socket; its path may exceed the 108-byte limit
    of unix socket addresses, so we connect through ``/proc/self/fd/N/qmp.sock``."""

    def __init__(self, run_dir: Path, timeout: float = 5.0) -> None:
        self.events: list[QmpEvent] = []
        self._buf = b""
        dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(f"/proc/self/fd/{dir_fd}/{QMP_SOCKET}")
            self._read()  # greeting
            self.execute("qmp_capabilities")
        except (OSError, QmpError) as e:
            self._sock.close()
            raise QmpError(f"QMP connect to {run_dir / QMP_SOCKET}: {e}") from e
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> dict[str, object]:
        while b"\n" not in self._buf:
            try:
                chunk = self._sock.recv(65536)
            except OSError as e:
                raise QmpError(str(e)) from e
            if not chunk:
                raise QmpError("connection closed by QEMU")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise QmpError(f"unexpected QMP message: {line!r}")
        return msg

    def execute(self, command: str, arguments: dict[str, object] | None = None) -> object:
        """Run ``command``; its ``return`` value. Events read meanwhile go to ``self.events``."""
        req: dict[str, object] = {"execute": command}
        if arguments:
            req["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(req).encode() + b"\n")
        except OSError as e:
            raise QmpError(str(e)) from e
        while True:
            msg = self._read()
            if "event" in msg:
                data = msg.get("data")
                self.events.append(
                    QmpEvent(str(msg["event"]), data if isinstance(data, dict) else {})
                )
            elif "error" in msg:
                raise QmpError(f"{command}: {msg['error']}")
            elif "return" in msg:
                return msg["return"]
