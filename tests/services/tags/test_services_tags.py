"""Tag rules without HTTP: only the owner tags a resource, and sees its own tags."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln.errors import KilnError
from kiln.services.tags.tags import create_tags, describe_tags


def test_create_and_describe_tags(world: World) -> None:
    image_id = world.register(world.owner, "tagged")
    create_tags(world.svc, world.owner, [image_id], [("team", "infra")], False)
    seen = describe_tags(world.svc, world.owner, [], None, None, False)
    assert [(t.resource_id, t.key, t.value) for t in seen.tags] == [(image_id, "team", "infra")]
    assert describe_tags(world.svc, world.stranger, [], None, None, False).tags == ()
    with pytest.raises(KilnError):
        create_tags(world.svc, world.stranger, [image_id], [("team", "evil")], False)
