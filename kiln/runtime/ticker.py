"""A background thread that calls one function every ``period`` seconds until stopped (kiln
serve's lifecycle scheduler, docs/lifecycle.md#the-scheduler). One call at a time: the next
waits for the last to return. A call that raises is logged and the ticking goes on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, period_s: float, tick: Callable[[], object], name: str) -> None:
        if period_s <= 0:
            raise ValueError("a ticker's period is positive")
        self._period = period_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Call ``tick`` now, then every period (idempotent only in that it starts once)."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end and wait up to ``timeout`` for a running call to return."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("%s: tick failed", self._thread.name)
            self._stop.wait(self._period)
