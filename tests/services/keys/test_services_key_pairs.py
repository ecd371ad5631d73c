"""Key pair rules without HTTP: create, describe (only one's own), delete."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln.errors import KilnError
from kiln.services.keys.key_pairs import create_key_pair, delete_key_pair, describe_key_pairs


def test_create_describe_delete_key_pair(world: World) -> None:
    made = create_key_pair(world.svc, world.owner, "mine", None, None, (), False)
    assert made.key_material.startswith("-----BEGIN")
    listed = describe_key_pairs(world.svc, world.owner, ["mine"], [], [], False)
    assert [k.key_pair_id for k in listed] == [made.key_pair.key_pair_id]
    assert describe_key_pairs(world.svc, world.stranger, [], [], [], False) == []
    with pytest.raises(KilnError):
        describe_key_pairs(world.svc, world.stranger, ["mine"], [], [], False)
    assert delete_key_pair(world.svc, world.owner, "mine", None, False) == made.key_pair.key_pair_id
    assert describe_key_pairs(world.svc, world.owner, [], [], [], False) == []
