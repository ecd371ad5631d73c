"""A periodic task on a daemon thread (the Recycle Bin's purge sweep in ``kiln serve``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``tick`` once at ``start`` and then every ``interval_s`` seconds until ``close``.
    A tick that raises is logged and the next one runs as planned; ``close`` waits for a tick
    under way. Not restartable."""

    def __init__(self, name: str, interval_s: float, tick: Callable[[], None]) -> None:
        self.name = name
        self.interval_s = interval_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        def loop() -> None:
            while True:
                try:
                    self._tick()
                except Exception:
                    log.exception("%s failed", self.name)
                if self._stop.wait(self.interval_s):
                    return

        self._thread = threading.Thread(target=loop, name=f"kiln-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
