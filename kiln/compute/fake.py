"""An in-memory VmDriver: "VMs" that run instantly and never boot a guest.

It keeps the :class:`~kiln.compute.driver.VmDriver` contract (docs/compute.md) so that the
instance rules can be tested without QEMU: ``start`` refuses a missing disk or a second VM in the
same run directory, ``shutdown``/``kill`` are idempotent, and ``find`` answers from the run
directory. A "VM" writes one line to ``console.log`` in its run directory when it starts, and it
stays running until it is shut down or killed (``crash`` simulates a guest that died).
Shipped in the package, like the store's MemoryBackend, for tests and benchmarks of the rules.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

from kiln import errors
from kiln.compute.driver import VmHandle, VmSpec
from kiln.errors import KilnError

CONSOLE = "console.log"  # the name kiln/compute/qemu.py writes, read by GetConsoleOutput


class FakeDriver:
    """Thread-safe. ``started`` lists every spec passed to a successful ``start``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Path, VmHandle] = {}
        self._pids = itertools.count(100_000)
        self.started: list[VmSpec] = []

    def start(self, spec: VmSpec) -> VmHandle:
        for disk in spec.disks:
            if not Path(disk.path).exists():
                raise KilnError(errors.InvalidParameterValue, f"disk {disk.path} does not exist")
        run_dir = Path(spec.run_dir)
        with self._lock:
            if run_dir in self._running:
                raise KilnError(errors.IncorrectInstanceState, f"a VM already runs in {run_dir}")
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / CONSOLE).write_bytes(f"fake VM {spec.instance_id} booted\n".encode())
            handle = VmHandle(
                spec.instance_id, next(self._pids), run_dir, spec.ssh_host_port, spec.accel
            )
            self._running[run_dir] = handle
            self.started.append(spec)
        return handle

    def shutdown(self, handle: VmHandle, timeout: float) -> bool:
        self.kill(handle)
        return True

    def kill(self, handle: VmHandle) -> None:
        with self._lock:
            current = self._running.get(Path(handle.run_dir))
            if current is not None and current.pid == handle.pid:
                del self._running[Path(handle.run_dir)]

    def is_running(self, handle: VmHandle) -> bool:
        with self._lock:
            current = self._running.get(Path(handle.run_dir))
            return current is not None and current.pid == handle.pid

    def console_output(self, handle: VmHandle) -> bytes:
        path = Path(handle.run_dir) / CONSOLE
        return path.read_bytes() if path.exists() else b""

    def find(self, run_dir: Path) -> VmHandle | None:
        with self._lock:
            return self._running.get(Path(run_dir))

    def crash(self, run_dir: Path) -> None:
        """The guest died on its own (the watcher should notice)."""
        with self._lock:
            self._running.pop(Path(run_dir), None)
