from __future__ import annotations

from pathlib import Path

import pytest
from services_fixtures import World, make_world


@pytest.fixture
def world(catalog, tmp_path: Path) -> World:  # type: ignore[no-untyped-def]
    return make_world(catalog, tmp_path)
