"""The community catalog without HTTP, on SQLite and PostgreSQL (docs/community.md): public images
of every account, ExecutableUsers as EC2 documents it, owner aliases, verified providers and
CancelImageLaunchPermission."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln.catalog import images as cat
from kiln.catalog.records import Filter, LaunchPermissionRecord
from kiln.errors import KilnError
from kiln.services.accounts.accounts import set_account_alias, set_account_verified
from kiln.services.context import Caller
from kiln.services.images.cancel_image_launch_permission import (
    CancelImageLaunchPermissionRequest,
    cancel_image_launch_permission,
)
from kiln.services.images.describe_images import DescribeImagesRequest, describe_images
from kiln.services.images.image_attributes import (
    ModifyImageAttributeRequest,
    modify_image_attribute,
)

USER = LaunchPermissionRecord


def ids(world: World, who: Caller, **kw: object) -> set[str]:
    res = describe_images(world.svc, who, DescribeImagesRequest(**kw))  # type: ignore[arg-type]
    return {i.image_id for i in res.images}


def share(world: World, owner: Caller, image_id: str, *perms: LaunchPermissionRecord) -> None:
    modify_image_attribute(
        world.svc,
        owner,
        ModifyImageAttributeRequest(image_id=image_id, attribute="launchPermission", add=perms),
    )


def cancel(world: World, who: Caller, image_id: str, dry_run: bool = False) -> None:
    cancel_image_launch_permission(
        world.svc, who, CancelImageLaunchPermissionRequest(image_id, dry_run)
    )


def code(exc: pytest.ExceptionInfo[KilnError]) -> str:
    return exc.value.code.code


def test_executable_users_all_self_and_an_account_id(world: World) -> None:
    o, g, s = world.owner, world.grantee, world.stranger
    public_o = world.register(o, "public-of-owner")
    share(world, o, public_o, USER(group="all"))
    public_s = world.register(s, "public-of-stranger")
    share(world, s, public_s, USER(group="all"))
    shared_g = world.register(o, "shared-with-grantee")
    share(world, o, shared_g, USER(user_id=g.account_id))
    shared_s = world.register(o, "shared-with-stranger")
    share(world, o, shared_s, USER(user_id=s.account_id))
    both = world.register(s, "strangers-shared-with-both")
    share(world, s, both, USER(user_id=g.account_id), USER(user_id=o.account_id))
    own_g = world.register(g, "grantees-own")

    # all: the public images of every account, whoever asks, own ones included
    assert ids(world, g, executable_users=("all",)) == {public_o, public_s}
    assert ids(world, o, executable_users=("all",)) == {public_o, public_s}
    # self (or one's own id): images shared with the caller by explicit permission only
    assert ids(world, g, executable_users=("self",)) == {shared_g, both}
    assert ids(world, g, executable_users=(g.account_id,)) == {shared_g, both}
    assert own_g not in ids(world, g, executable_users=("self",))
    # another account's id: the caller's own images shared with it, never a third party's
    assert ids(world, o, executable_users=(s.account_id,)) == {shared_s}
    assert ids(world, o, executable_users=(g.account_id,)) == {shared_g}
    assert ids(world, g, executable_users=(o.account_id,)) == set()
    # several values: any of them; Owners narrows
    assert ids(world, g, executable_users=("all", "self")) == {public_o, public_s, shared_g, both}
    assert ids(world, g, executable_users=("all", "self"), owners=(s.account_id,)) == {
        public_s,
        both,
    }
    with pytest.raises(KilnError) as e:
        ids(world, g, executable_users=("everyone",))
    assert code(e) == "InvalidUserID.Malformed" and e.value.message == 'Invalid user id: "everyone"'


def test_owners_by_alias_with_executable_users(world: World) -> None:
    o, g = world.owner, world.grantee
    set_account_alias(world.svc.catalog, o.account_id, "acme-images")
    public = world.register(o, "acme-public")
    share(world, o, public, USER(group="all"))
    shared = world.register(o, "acme-shared")
    share(world, o, shared, USER(user_id=g.account_id))
    assert ids(world, g, owners=("acme-images",)) == {public, shared}
    assert ids(world, g, owners=("acme-images",), executable_users=("all",)) == {public}
    assert ids(world, g, owners=("acme-images",), executable_users=("self",)) == {shared}
    (img,) = describe_images(world.svc, g, DescribeImagesRequest(image_ids=(public,))).images
    assert img.owner_alias == "acme-images"
    assert ids(world, g, filters=(Filter("owner-alias", ("acme-*",)),)) == {public, shared}
    set_account_alias(world.svc.catalog, o.account_id, None)
    (img,) = describe_images(world.svc, g, DescribeImagesRequest(image_ids=(public,))).images
    assert img.owner_alias is None
    with pytest.raises(KilnError) as e:
        ids(world, g, owners=("acme-images",))
    assert code(e) == "InvalidUserID.Malformed"


def test_a_verified_provider_answers_owners_aws_marketplace(world: World) -> None:
    o, g, s = world.owner, world.grantee, world.stranger
    vendor = world.register(s, "vendor-public")
    share(world, s, vendor, USER(group="all"))
    other = world.register(o, "unverified-public")
    share(world, o, other, USER(group="all"))
    market = ("aws-marketplace",)
    assert ids(world, g, owners=market) == set()
    set_account_verified(world.svc.catalog, s.account_id, True)
    assert ids(world, g, owners=market) == {vendor}
    assert ids(world, g, owners=market, executable_users=("all",)) == {vendor}
    assert ids(world, g, filters=(Filter("owner-alias", market),)) == {vendor}
    (img,) = describe_images(world.svc, g, DescribeImagesRequest(image_ids=(vendor,))).images
    assert img.owner_alias == "aws-marketplace"
    # its own alias still finds it; the alias shown is the verified mark
    set_account_alias(world.svc.catalog, s.account_id, "vendor-co")
    assert ids(world, g, owners=("vendor-co",)) == {vendor}
    (img,) = describe_images(world.svc, g, DescribeImagesRequest(image_ids=(vendor,))).images
    assert img.owner_alias == "aws-marketplace"
    set_account_verified(world.svc.catalog, s.account_id, False)
    assert ids(world, g, owners=market) == set()
    (img,) = describe_images(world.svc, g, DescribeImagesRequest(image_ids=(vendor,))).images
    assert img.owner_alias == "vendor-co"


def test_alias_and_verify_refusals_change_nothing(world: World) -> None:
    catalog = world.svc.catalog
    o, g = world.owner, world.grantee
    set_account_alias(catalog, o.account_id, "taken-one")
    for bad in ("ab", "Upper", "has_underscore", "-lead", "trail-", "dou--ble", "123456789012"):
        with pytest.raises(KilnError) as e:
            set_account_alias(catalog, g.account_id, bad)
        assert code(e) == "InvalidParameterValue", bad
    for reserved in ("self", "all", "amazon", "aws-marketplace", "aws-backup-vault"):
        with pytest.raises(KilnError) as e:
            set_account_alias(catalog, g.account_id, reserved)
        assert code(e) == "InvalidParameterValue", reserved
    with pytest.raises(KilnError) as e:
        set_account_alias(catalog, g.account_id, "taken-one")
    assert code(e) == "InvalidParameterValue" and o.account_id in e.value.message
    with pytest.raises(KilnError) as e:
        set_account_alias(catalog, g.account_id, "kiln")  # the system account's
    assert code(e) == "InvalidParameterValue"
    for unknown in ("123123123123", "nope"):
        with pytest.raises(KilnError) as e:
            set_account_verified(catalog, unknown, True)
        assert code(e) == "InvalidParameterValue"
    from kiln.catalog.accounts import get_account

    with catalog.read() as tx:
        acct = get_account(tx, g.account_id)
    assert acct is not None and acct.alias is None and not acct.verified
    assert set_account_alias(catalog, o.account_id, "taken-one").alias == "taken-one"  # again


def test_cancel_image_launch_permission_drops_the_callers_grant_only(world: World) -> None:
    o, g, s = world.owner, world.grantee, world.stranger
    image = world.register(o, "shared-twice")
    share(world, o, image, USER(user_id=g.account_id), USER(user_id=s.account_id))
    with pytest.raises(KilnError) as e:
        cancel(world, g, image, dry_run=True)
    assert code(e) == "DryRunOperation"
    assert image in ids(world, g, executable_users=("self",))
    cancel(world, g, image)
    assert image not in ids(world, g, executable_users=("self",))
    assert image not in ids(world, g)
    assert image in ids(world, s, executable_users=("self",))  # the other grantee keeps it
    with world.svc.catalog.read() as tx:
        assert cat.launch_permissions(tx, image) == [USER(user_id=s.account_id)]
    with pytest.raises(KilnError) as e:
        cancel(world, g, image)  # twice: it is no longer shared with g
    assert code(e) == "InvalidAMIID.NotFound"
    assert e.value.message == f"The image id '[{image}]' does not exist"
    share(world, o, image, USER(user_id=g.account_id))  # the owner may share it again
    assert image in ids(world, g, executable_users=("self",))


def test_cancel_on_a_public_image_keeps_it_public(world: World) -> None:
    o, g = world.owner, world.grantee
    image = world.register(o, "public-and-shared")
    share(world, o, image, USER(group="all"), USER(user_id=g.account_id))
    cancel(world, g, image)
    assert image in ids(world, g, executable_users=("all",))
    assert image not in ids(world, g, executable_users=("self",))
    with pytest.raises(KilnError) as e:
        cancel(world, g, image)  # public alone: nothing of the caller's to drop
    assert code(e) == "InvalidAMIID.NotFound"


def test_cancel_refusals_are_not_found_and_change_nothing(world: World) -> None:
    o, g, s = world.owner, world.grantee, world.stranger
    public = world.register(o, "only-public")
    share(world, o, public, USER(group="all"))
    private = world.register(o, "private")
    org = world.register(o, "org-shared")
    share(
        world,
        o,
        org,
        USER(organization_arn="arn:aws:organizations::123456789012:organization/o-abcdefghij"),
    )
    mine = world.register(g, "grantees-own")
    elsewhere = world.register(Caller(o.account_id, "eu-west-1"), "other-region")
    share(world, Caller(o.account_id, "eu-west-1"), elsewhere, USER(user_id=g.account_id))
    gone = world.register(o, "gone")
    share(world, o, gone, USER(user_id=g.account_id))
    from kiln.services.images import images as rules

    rules.deregister_image(world.svc, o, gone)
    with world.svc.catalog.read() as tx:
        before = {i: cat.launch_permissions(tx, i) for i in (public, private, org, mine)}
    for image in (public, private, org, mine, elsewhere, gone, "ami-0123456789abcdef0"):
        with pytest.raises(KilnError) as e:
            cancel(world, g, image)
        assert code(e) == "InvalidAMIID.NotFound", image
        assert e.value.message == f"The image id '[{image}]' does not exist"
    with pytest.raises(KilnError) as e:
        cancel(world, s, "ami-nothex")
    assert code(e) == "InvalidAMIID.Malformed"
    with world.svc.catalog.read() as tx:
        assert {i: cat.launch_permissions(tx, i) for i in before} == before
