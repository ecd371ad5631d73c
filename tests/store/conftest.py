"""Fixtures for the store tests: a CLI runner (real `kiln` subprocess) and small disk images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from store_helpers import disk_like_bytes, make_disk

KILN = [sys.executable, "-m", "kiln"]


@dataclass
class Run:
    rc: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def kiln(data_dir: Path) -> Callable[..., Run]:
    def run(*args: str, check: bool = True) -> Run:
        p = subprocess.run(
            [*KILN, *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "200"},
        )
        if check and p.returncode != 0:
            raise AssertionError(f"kiln {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return Run(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    mib = 1024 * 1024
    return make_disk(
        tmp_path / "small.raw",
        64 * mib,
        [
            (0, disk_like_bytes(3 * mib, 1)),
            (10 * mib, disk_like_bytes(2 * mib + 4097, 2)),
            (40 * mib, os.urandom(mib)),
            (63 * mib, b"end of disk" * 100),
        ],
    )
