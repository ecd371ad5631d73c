"""The ticker kiln serve runs the lifecycle scheduler and the Recycle Bin's purge on: first
tick at start, then every period; a failing tick does not stop the next; stop waits for the
thread."""

from __future__ import annotations

import threading

from kiln.runtime.ticker import Ticker


def test_ticks_repeat_survive_a_failure_and_stop_on_close() -> None:
    calls: list[int] = []
    third = threading.Event()

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("one bad sweep")
        if len(calls) == 3:
            third.set()

    task = Ticker(0.01, tick, "kiln-test-sweep")
    task.start()
    assert third.wait(60)  # a guard against hanging, not a speed requirement
    task.stop()
    done = len(calls)
    assert done >= 3
    assert not any(t.name == "kiln-test-sweep" for t in threading.enumerate())
    assert len(calls) == done
