"""Who may see an image is written twice: in Python (services/images/access.py ``can_see``, used by
every action on one image) and in SQL (catalog/image_query.py, used by DescribeImages). This test
holds them to the same answer for every kind of image and every kind of caller."""

from __future__ import annotations

from services_fixtures import World

from kiln.catalog import images as cat
from kiln.catalog.image_query import ImageQuery, query_image_ids
from kiln.catalog.records import LaunchPermissionRecord, utc_now
from kiln.services.context import Caller
from kiln.services.images import images as rules
from kiln.services.images.access import can_see
from kiln.services.images.image_attributes import (
    ModifyImageAttributeRequest,
    modify_image_attribute,
)


def _share(world: World, image_id: str, *perms: LaunchPermissionRecord) -> None:
    modify_image_attribute(
        world.svc,
        world.owner,
        ModifyImageAttributeRequest(image_id=image_id, attribute="launchPermission", add=perms),
    )


def test_python_and_sql_agree_on_who_may_see_an_image(world: World) -> None:
    o, g = world.owner, world.grantee
    private = world.register(o, "private")
    public = world.register(o, "public")
    _share(world, public, LaunchPermissionRecord(group="all"))
    shared = world.register(o, "shared")
    _share(world, shared, LaunchPermissionRecord(user_id=g.account_id))
    disabled = world.register(o, "disabled")
    rules.disable_image(world.svc, o, disabled, False)
    gone = world.register(o, "gone")
    _share(world, gone, LaunchPermissionRecord(group="all"))
    rules.deregister_image(world.svc, o, gone)
    elsewhere = world.register(Caller(o.account_id, "eu-west-1"), "elsewhere")
    odd = world.register(o, "disabled-but-shared")  # a row no rule makes: probe the edge
    _share(world, odd, LaunchPermissionRecord(user_id=g.account_id))
    with world.svc.catalog.write() as tx:
        cat.update_image(tx, odd, {"state": "disabled"})
    ids = (private, public, shared, disabled, gone, elsewhere, odd)
    expected = {
        o.account_id: {private, public, shared, disabled, odd},
        g.account_id: {public, shared},
        world.stranger.account_id: {public},
    }
    with world.svc.catalog.read() as tx:
        images = [img for img in (cat.get_image(tx, i, o.account_id) for i in ids) if img]
        for who in (o, g, world.stranger):
            python = {img.image_id for img in images if can_see(tx, who, img)}
            sql = set(
                query_image_ids(
                    tx,
                    ImageQuery(
                        region=who.region,
                        caller=who.account_id,
                        now=utc_now(),
                        image_ids=ids,
                        include_deprecated=True,
                        include_disabled=True,
                    ),
                    world.svc.catalog.dialect,
                )
            )
            assert python == sql == expected[who.account_id], who
