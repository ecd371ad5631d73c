"""Fixtures for the host network tests (helpers in netlab.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netlab import Lab, need_root


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    need_root()
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def fds() -> Callable[[], int]:
    """The number of open file descriptors of this process."""
    return lambda: len(os.listdir("/proc/self/fd"))
