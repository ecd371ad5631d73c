"""Build numbers and parent images (docs/builds.md#versions, #parent-images) on a real
catalog: families, the account's builds with x version filters, ids and names (the last two
through the DescribeImages rule)."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln.catalog import SYSTEM_ACCOUNT_ID
from kiln.catalog import builds as cat
from kiln.errors import KilnError
from kiln.services.builds.parents import resolve_parent
from kiln.services.context import Caller
from kiln.services.images.describe_images import DescribeImagesRequest, describe_images


class RulesImages:
    """The image look-ups of an Ec2Port, through the DescribeImages rule."""

    def __init__(self, world: World, caller: Caller) -> None:
        self.world, self.caller = world, caller

    def describe_image(self, image_id: str) -> dict[str, object] | None:
        try:
            res = describe_images(
                self.world.svc, self.caller, DescribeImagesRequest(image_ids=(image_id,))
            )
        except KilnError:
            return None
        return {"ImageId": res.images[0].image_id} if res.images else None

    def find_image_by_name(self, name: str) -> str | None:
        res = describe_images(self.world.svc, self.caller, DescribeImagesRequest())
        found = [i for i in res.images if i.name == name]
        return found[-1].image_id if found else None


def record(world: World, who: Caller, recipe: str, version: str, image: str | None) -> int:
    with world.svc.catalog.write() as tx:
        b = cat.start_build_version(tx, who.account_id, who.region, recipe, version)
        cat.finish_build_version(
            tx,
            b,
            state="available" if image else "failed",
            image_id=image,
            parent_image_id=None,
            reason=None if image else "broken",
            log="",
        )
    return b.build


def test_builds_are_numbered_per_recipe_version_and_failures_keep_their_number(
    world: World,
) -> None:
    o = world.owner
    assert record(world, o, "web", "1.0.0", None) == 1
    assert record(world, o, "web", "1.0.0", world.register(o, "web/1.0.0/2")) == 2
    assert record(world, o, "web", "1.1.0", world.register(o, "web/1.1.0/1")) == 1
    assert record(world, o, "api", "1.0.0", None) == 1
    assert record(world, world.grantee, "web", "1.0.0", None) == 1  # per account
    with world.svc.catalog.read() as tx:
        rows = cat.build_versions(tx, o.account_id, o.region, "web")
    assert [(r.version, r.build, r.state) for r in rows] == [
        ("1.0.0", 1, "failed"),
        ("1.0.0", 2, "available"),
        ("1.1.0", 1, "available"),
    ]


def test_parent_images_resolve_by_build_filter_family_name_and_id(world: World) -> None:
    o = world.owner
    lookup = RulesImages(world, o)
    old = world.register(o, "web/1.0.0/1")
    record(world, o, "web", "1.0.0", old)
    new = world.register(o, "web/1.2.0/1")
    record(world, o, "web", "1.2.0", new)
    two = world.register(o, "web/2.0.0/1")
    record(world, o, "web", "2.0.0", two)
    resolve = lambda parent: resolve_parent(world.svc, o, lookup, parent, "web")  # noqa: E731
    assert resolve("web/1.x.x") == new
    assert resolve("web/1.0.x") == old
    assert resolve("web/x.x.x") == two and resolve("web/latest") == two and resolve("latest") == two
    assert resolve(old) == old
    system = Caller(SYSTEM_ACCOUNT_ID, o.region)
    base = world.register(system, "kiln/micro/1.0")
    from kiln.catalog import images as cat_images
    from kiln.catalog.records import LaunchPermissionRecord

    with world.svc.catalog.write() as tx:
        cat_images.add_launch_permissions(tx, base, [LaunchPermissionRecord(group="all")])
    assert resolve("kiln/micro") == base  # the operator's family
    assert resolve("kiln/micro/1.0") == base  # an exact name
    for missing in ("web/3.x.x", "nothing-here", "ami-0123456789abcdef0"):
        with pytest.raises(KilnError) as e:
            resolve(missing)
        assert e.value.code.code == "InvalidAMIID.NotFound"
    with pytest.raises(KilnError, match="recipe api has no available build"):
        resolve_parent(world.svc, o, lookup, "latest", "api")
