"""The periodic task kiln serve runs the Recycle Bin's purge on: first tick at start, then
every interval; a failing tick does not stop the next; close waits for the thread."""

from __future__ import annotations

import threading

from kiln.runtime.periodic import Periodic


def test_ticks_repeat_survive_a_failure_and_stop_on_close() -> None:
    calls: list[int] = []
    third = threading.Event()

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("one bad sweep")
        if len(calls) == 3:
            third.set()

    task = Periodic("test-sweep", 0.01, tick)
    task.start()
    assert third.wait(60)  # a guard against hanging, not a speed requirement
    task.close()
    done = len(calls)
    assert done >= 3
    assert not any(t.name == "kiln-test-sweep" for t in threading.enumerate())
    assert len(calls) == done
