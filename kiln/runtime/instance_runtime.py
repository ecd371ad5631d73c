"""The part of Kiln that runs VMs in the background: a worker pool, one lock per instance, the
accelerator choice, and a watcher.

Every lifecycle step for an instance (boot, stop, terminate, reboot, the shutdown of CreateImage)
runs on the pool while holding that instance's lock, so steps for one instance never overlap
and a request never waits for a VM: it moves the instance to a transitional state, submits the
step and answers (docs/instances.md#lifecycle). Steps re-read the catalog when they start and
act on what they find, so their order does not matter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from kiln.compute.driver import VmDriver

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 6
WATCH_INTERVAL_S = 2.0


class InstanceRuntime:
    """``driver`` runs the VMs; ``resolve_accel(requested)`` turns ``auto`` into ``kvm`` or
    ``tcg`` (kiln.compute.accel.probe_accelerator), asked once, on the first boot;
    ``preflight()`` raises if VMs cannot run at all (checked before a launch or start)."""

    def __init__(
        self,
        driver: VmDriver,
        accel: str = "auto",
        resolve_accel: Callable[[str], str] | None = None,
        workers: int = DEFAULT_WORKERS,
        watch_interval: float = WATCH_INTERVAL_S,
        preflight: Callable[[], None] | None = None,
    ) -> None:
        self.driver = driver
        self._preflight = preflight
        self.requested_accel = accel
        self._resolve = resolve_accel
        self._accel: str | None = None
        self._accel_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kiln-vm")
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.watch_interval = watch_interval
        self.forced: set[str] = set()  # instances whose stop was asked with Force=true

    def accel(self) -> str:
        with self._accel_lock:
            if self._accel is None:
                if self._resolve is None:
                    self._accel = "tcg" if self.requested_accel == "auto" else self.requested_accel
                else:
                    self._accel = self._resolve(self.requested_accel)
            return self._accel

    def check_available(self) -> None:
        """Raise ``KilnError`` (InsufficientInstanceCapacity) now if no VM could start, e.g. the
        hypervisor is not installed, so that a launch is refused before anything is created."""
        if self._preflight is not None:
            self._preflight()

    def _lock(self, instance_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(instance_id, threading.Lock())

    @contextmanager
    def locked(self, instance_id: str) -> Iterator[None]:
        """Hold the instance's lifecycle lock (blocks until free)."""
        with self._lock(instance_id):
            yield

    @contextmanager
    def try_locked(self, instance_id: str) -> Iterator[bool]:
        """Hold the lock if it is free now; yields whether it was taken."""
        lock = self._lock(instance_id)
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()

    def submit(self, instance_id: str, step: Callable[[], None], what: str) -> Future[None]:
        """Run ``step`` on the pool under the instance's lock. Failures are logged (the step
        itself records the instance's truthful state)."""

        def run() -> None:
            with self.locked(instance_id):
                try:
                    step()
                except Exception:
                    log.exception("%s: %s failed", instance_id, what)

        future = self._pool.submit(run)
        with self._locks_guard:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[None]) -> None:
        with self._locks_guard:
            self._pending.discard(future)

    def wait_idle(self, timeout: float) -> bool:
        """True once no step is queued or running (tests, benchmarks, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._locks_guard:
                if not self._pending:
                    return True
            time.sleep(0.05)
        return False

    def watch(self, tick: Callable[[], None]) -> None:
        """Call ``tick`` every ``watch_interval`` seconds on a daemon thread until ``close``."""

        def loop() -> None:
            while not self._stop.wait(self.watch_interval):
                try:
                    tick()
                except Exception:
                    log.exception("instance watcher failed")

        self._watcher = threading.Thread(target=loop, name="kiln-vm-watch", daemon=True)
        self._watcher.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the watcher and wait for running steps (VMs themselves keep running)."""
        self._stop.set()
        self.wait_idle(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
