"""Image aliases without HTTP (docs/aliases.md): set, resolve in DescribeImages, dangle."""

from __future__ import annotations

import pytest
from services_fixtures import REGION, World

from kiln.catalog import SYSTEM_ACCOUNT_ID
from kiln.catalog import images as cat_images
from kiln.catalog.records import LaunchPermissionRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.images import aliases
from kiln.services.images.describe_images import DescribeImagesRequest, describe_images
from kiln.services.images.images import deregister_image

ALIAS = "ami-0123456789abcdef0"


def code(exc: pytest.ExceptionInfo[KilnError]) -> str:
    return exc.value.code.code


def public(world: World, who: Caller, name: str) -> str:
    image_id = world.register(who, name)
    with world.svc.catalog.write() as tx:
        cat_images.add_launch_permissions(tx, image_id, [LaunchPermissionRecord(group="all")])
    return image_id


def describe(world: World, who: Caller, *ids: str) -> list[tuple[str, str]]:
    res = describe_images(world.svc, who, DescribeImagesRequest(image_ids=ids))
    return [(i.image_id, i.name) for i in res.images]


def test_an_alias_of_an_image_describes_as_the_alias(world: World) -> None:
    image_id = public(world, world.owner, "web-1")
    aliases.set_alias(world.svc, REGION, ALIAS, image_id)
    for who in (world.owner, world.stranger):  # an alias is for every account
        assert describe(world, who, ALIAS) == [(ALIAS, "web-1")]
    assert describe(world, world.owner, ALIAS, image_id) == [(ALIAS, "web-1"), (image_id, "web-1")]
    # not in the other region
    with pytest.raises(KilnError) as e:
        describe(world, Caller(world.owner.account_id, "eu-west-1"), ALIAS)
    assert code(e) == "InvalidAMIID.NotFound"


def test_an_alias_of_a_family_follows_its_newest_image(world: World) -> None:
    system = Caller(SYSTEM_ACCOUNT_ID, REGION)
    aliases.set_alias(world.svc, REGION, ALIAS, "kiln/debian")
    with pytest.raises(KilnError) as e:  # a family without an image: dangling
        describe(world, world.owner, ALIAS)
    assert code(e) == "InvalidAMIID.NotFound" and ALIAS in e.value.message
    assert "kiln/debian" in e.value.message
    first = public(world, system, "kiln/debian/12.1")
    with world.svc.catalog.read() as tx:
        assert aliases.resolve_image_id(tx, world.owner, ALIAS) == first
    second = public(world, system, "kiln/debian/12.2")
    assert describe(world, world.owner, ALIAS) == [(ALIAS, "kiln/debian/12.2")]
    [view] = aliases.list_aliases(world.svc)
    assert (view.alias, view.target, view.resolves_to) == (ALIAS, "kiln/debian", second)


def test_an_alias_of_a_deleted_or_private_image_dangles(world: World) -> None:
    image_id = world.register(world.owner, "private-1")
    aliases.set_alias(world.svc, REGION, ALIAS, image_id)
    assert describe(world, world.owner, ALIAS) == [(ALIAS, "private-1")]
    with pytest.raises(KilnError) as e:
        describe(world, world.stranger, ALIAS)
    assert code(e) == "InvalidAMIID.NotFound" and ALIAS in e.value.message
    assert image_id in e.value.message  # the target an operator set is named, not its content
    deregister_image(world.svc, world.owner, image_id)
    with pytest.raises(KilnError) as e:
        describe(world, world.owner, ALIAS)
    assert code(e) == "InvalidAMIID.NotFound" and ALIAS in e.value.message


def test_set_alias_refuses_what_cannot_work(world: World) -> None:
    image_id = world.register(world.owner, "web-1")
    for alias, target, want in [
        ("kiln/debian", "kiln/debian", "InvalidAMIID.Malformed"),
        ("ami-123", image_id, "InvalidAMIID.Malformed"),
        (image_id, "kiln/debian", "InvalidParameterValue"),  # a real image's id
        (ALIAS, "ami-00000000000000000", "InvalidAMIID.NotFound"),
        (ALIAS, "no spaces/x y", "InvalidParameterValue"),
    ]:
        with pytest.raises(KilnError) as e:
            aliases.set_alias(world.svc, REGION, alias, target)
        assert code(e) == want, (alias, target)
    aliases.set_alias(world.svc, REGION, ALIAS, image_id)
    with pytest.raises(KilnError) as e:  # no chains
        aliases.set_alias(world.svc, REGION, "ami-0123456789abcdef1", ALIAS)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(KilnError) as e:
        aliases.set_alias(world.svc, "mars-1", ALIAS, image_id)
    assert code(e) == "InvalidRegion"
    aliases.delete_alias(world.svc, REGION, ALIAS)
    with pytest.raises(KilnError) as e:
        aliases.delete_alias(world.svc, REGION, ALIAS)
    assert code(e) == "InvalidAMIID.NotFound"
    assert aliases.list_aliases(world.svc) == []


def test_owners_amazon_matches_base_images_only_when_configured(world: World) -> None:
    from dataclasses import replace

    base = public(world, Caller(SYSTEM_ACCOUNT_ID, REGION), "kiln/micro/1")
    public(world, world.owner, "mine-1")
    req = DescribeImagesRequest(owners=("amazon",))
    assert describe_images(world.svc, world.owner, req).images == ()
    svc = replace(world.svc, amazon_images=True)
    assert [i.image_id for i in describe_images(svc, world.owner, req).images] == [base]
