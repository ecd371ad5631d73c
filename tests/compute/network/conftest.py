"""Fixtures for the host network tests (helpers in netlab.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netlab import Lab, need_root

from kiln.bake.micro import BakeResult, build_micro_image


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


@pytest.fixture(scope="session")
def micro(tmp_path_factory: pytest.TempPathFactory) -> BakeResult:
    d = tmp_path_factory.mktemp("micro")
    return build_micro_image(d / "micro.raw", d / "work")


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@kiln", "-f", str(key)],
        check=True,
    )
    return key
