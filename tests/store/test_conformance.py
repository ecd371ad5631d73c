"""Every backend passes the conformance suite (kiln/store/conformance.py), like restic's
mem_backend_test.go: a backend's test only says how to make a fresh one."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kiln.store import conformance
from kiln.store.backend import Backend
from kiln.store.backends import open_backend
from kiln.store.local import file_url
from kiln.store.memory import MemoryBackend

_fresh = itertools.count()


def _local(tmp: Path) -> conformance.BackendFactory:
    return lambda: open_backend(file_url(tmp / f"store-{next(_fresh)}")).backend


def _memory(tmp: Path) -> conformance.BackendFactory:
    return lambda: MemoryBackend()


FACTORIES = {"local": _local, "memory": _memory}


@pytest.mark.parametrize(
    "check", conformance.CHECKS, ids=lambda c: c.__name__.removeprefix("check_")
)
@pytest.mark.parametrize("kind", FACTORIES)
def test_backend_conforms(kind: str, check: conformance.Check, tmp_path: Path) -> None:
    check(FACTORIES[kind](tmp_path), tmp_path)


def test_unknown_scheme_is_one_clear_error() -> None:
    for url in ("s3://bucket/prefix", "/var/lib/kiln/store", "file://relative/dir", "memory://"):
        with pytest.raises(ValueError, match="store URL"):
            open_backend(url)


def test_memory_urls_name_one_backend() -> None:
    b: Backend = MemoryBackend.named("conformance-shared")
    b.put("config", b"{}")
    assert open_backend("memory://conformance-shared").backend.get("config") == b"{}"
