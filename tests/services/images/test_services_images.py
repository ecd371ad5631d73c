"""Image rules without HTTP, on SQLite and PostgreSQL: what a caller of each action notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from services_fixtures import World

from kiln.catalog.images import update_image
from kiln.catalog.records import (
    BlockDeviceRecord,
    EbsRecord,
    Filter,
    LaunchPermissionRecord,
    ec2_time,
)
from kiln.errors import KilnError
from kiln.services.images import images as rules
from kiln.services.images.describe_images import DescribeImagesRequest, describe_images
from kiln.services.images.image_attributes import (
    ATTRIBUTES,
    ModifyImageAttributeRequest,
    describe_image_attribute,
    modify_image_attribute,
    reset_image_attribute,
)
from kiln.services.tags.tags import TagSpec, create_tags


def ids(world: World, who, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    res = describe_images(world.svc, who, DescribeImagesRequest(**kw))
    return [i.image_id for i in res.images]


def code(exc: pytest.ExceptionInfo[KilnError]) -> str:
    return exc.value.code.code


def share(world: World, image_id: str, add=(), remove=()) -> None:  # type: ignore[no-untyped-def]
    modify_image_attribute(
        world.svc,
        world.owner,
        ModifyImageAttributeRequest(
            image_id=image_id, attribute="launchPermission", add=tuple(add), remove=tuple(remove)
        ),
    )


def test_register_image_fills_ec2_defaults(world: World) -> None:
    snap = world.snapshot(world.owner, size_gib=2)
    image_id = world.register(
        world.owner,
        "web-1",
        snapshot_id=snap,
        ena_support=True,
        boot_mode="uefi",
        tpm_support="v2.0",
        imds_support="v2.0",
    )
    (img,) = describe_images(
        world.svc, world.owner, DescribeImagesRequest(image_ids=(image_id,))
    ).images
    assert img.state == "available" and img.owner_id == world.owner.account_id
    assert img.image_location == f"{world.owner.account_id}/web-1"
    assert (img.root_device_type, img.virtualization_type, img.architecture) == (
        "ebs",
        "hvm",
        "x86_64",
    )
    assert (img.boot_mode, img.tpm_support, img.imds_support, img.ena_support) == (
        "uefi",
        "v2.0",
        "v2.0",
        True,
    )
    ebs = img.block_devices[0].ebs
    assert ebs is not None
    assert (
        ebs.snapshot_id,
        ebs.volume_size,
        ebs.volume_type,
        ebs.delete_on_termination,
        ebs.encrypted,
    ) == (snap, 2, "gp2", True, False)


def test_register_image_honours_every_ebs_field(world: World) -> None:
    snap = world.snapshot(world.owner)
    bdm = BlockDeviceRecord(
        "/dev/sda1",
        ebs=EbsRecord(
            snapshot_id=snap,
            volume_size=20,
            volume_type="gp3",
            iops=4000,
            throughput=250,
            delete_on_termination=False,
            availability_zone="us-east-1b",
            volume_initialization_rate=150,
            ebs_card_index=0,
        ),
    )
    eph = BlockDeviceRecord("/dev/sdb", virtual_name="ephemeral0")
    none = BlockDeviceRecord("/dev/sdc", no_device=True)
    image_id = rules.register_image(
        world.svc,
        world.owner,
        rules.RegisterImageRequest(
            name="full-bdm", root_device_name="/dev/sda1", block_devices=(bdm, eph, none)
        ),
    )
    (img,) = describe_images(
        world.svc, world.owner, DescribeImagesRequest(image_ids=(image_id,))
    ).images
    got = img.block_devices
    assert got[0].ebs == EbsRecord(
        snap, 20, "gp3", 4000, 250, False, False, None, None, "us-east-1b", 150, 0
    )
    assert got[1].virtual_name == "ephemeral0" and got[2].no_device


@pytest.mark.parametrize(
    ("ebs", "expected"),
    [
        (EbsRecord(volume_size=0), "InvalidParameterValue"),
        (EbsRecord(volume_type="gp2", iops=3000), "InvalidParameterCombination"),
        (EbsRecord(volume_type="io1", volume_size=10), "MissingParameter"),
        (EbsRecord(volume_type="gp2", throughput=200), "InvalidParameterCombination"),
        (EbsRecord(kms_key_id="k"), "InvalidParameterCombination"),
        (EbsRecord(availability_zone="eu-west-1a"), "InvalidParameterValue"),
    ],
)
def test_register_image_rejects_bad_ebs(world: World, ebs: EbsRecord, expected: str) -> None:
    snap = world.snapshot(world.owner, size_gib=1)
    ebs = EbsRecord(
        **{**{f: getattr(ebs, f) for f in ebs.__dataclass_fields__}, "snapshot_id": snap}
    )
    with pytest.raises(KilnError) as e:
        rules.register_image(
            world.svc,
            world.owner,
            rules.RegisterImageRequest(
                name="bad-ebs",
                root_device_name="/dev/xvda",
                block_devices=(BlockDeviceRecord("/dev/xvda", ebs=ebs),),
            ),
        )
    assert code(e) == expected


def test_register_image_name_rules(world: World) -> None:
    first = world.register(world.owner, "dup-name")
    with pytest.raises(KilnError) as e:
        world.register(world.owner, "dup-name")
    assert code(e) == "InvalidAMIName.Duplicate" and first in e.value.message
    world.register(world.grantee, "dup-name")  # names are per account
    for bad in ("ab", "x" * 129, "semi;colon"):
        with pytest.raises(KilnError) as e:
            world.register(world.owner, bad)
        assert code(e) == "InvalidAMIName.Malformed"
    rules.deregister_image(world.svc, world.owner, first)
    world.register(world.owner, "dup-name")  # free again once deregistered


def test_register_image_snapshot_must_be_visible_and_big_enough(world: World) -> None:
    theirs = world.snapshot(world.stranger)
    with pytest.raises(KilnError) as e:
        world.register(world.owner, "not-mine", snapshot_id=theirs)
    assert code(e) == "InvalidSnapshot.NotFound"
    big = world.snapshot(world.owner, size_gib=8)
    with pytest.raises(KilnError) as e:
        rules.register_image(
            world.svc,
            world.owner,
            rules.RegisterImageRequest(
                name="too-small",
                root_device_name="/dev/xvda",
                block_devices=(
                    BlockDeviceRecord("/dev/xvda", ebs=EbsRecord(snapshot_id=big, volume_size=4)),
                ),
            ),
        )
    assert code(e) == "InvalidBlockDeviceMapping"


def test_describe_images_filters_and_wildcards(world: World) -> None:
    a = world.register(world.owner, "web-2024-01", architecture="arm64")
    b = world.register(world.owner, "web-2024-02")
    c = world.register(world.owner, "db-2024-01")
    create_tags(world.svc, world.owner, [a, c], [("role", "frontend")], False)
    o = world.owner
    assert ids(world, o, owners=("self",), filters=(Filter("name", ("web-*",)),)) == sorted([a, b])
    assert ids(
        world, o, filters=(Filter("name", ("*-2024-0?",)), Filter("tag:role", ("front*",)))
    ) == sorted([a, c])
    assert ids(world, o, filters=(Filter("architecture", ("arm64",)),)) == [a]
    assert ids(
        world, o, filters=(Filter("tag-key", ("role",)), Filter("name", ("db-*", "web-2024-02")))
    ) == [c]
    assert ids(
        world,
        o,
        filters=(
            Filter("block-device-mapping.volume-size", ("1",)),
            Filter("is-public", ("false",)),
        ),
    ) == sorted([a, b, c])
    with pytest.raises(KilnError) as e:
        ids(world, o, filters=(Filter("no-such-filter", ("x",)),))
    assert code(e) == "InvalidFilter"


def test_describe_images_paginates_without_gaps(world: World) -> None:
    made = sorted(world.register(world.owner, f"page-{n:02d}") for n in range(12))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        res = describe_images(
            world.svc,
            world.owner,
            DescribeImagesRequest(owners=("self",), max_results=5, next_token=token),
        )
        seen += [i.image_id for i in res.images]
        pages += 1
        token = res.next_token
        if token is None:
            break
    assert seen == made and pages == 3
    with pytest.raises(KilnError) as e:
        describe_images(world.svc, world.owner, DescribeImagesRequest(next_token="garbage"))
    assert code(e) == "InvalidPaginationToken"


def test_launch_permissions_are_enforced(world: World) -> None:
    image_id = world.register(world.owner, "shared-1")
    g, s = world.grantee, world.stranger
    assert ids(world, g) == [] and ids(world, s) == []
    with pytest.raises(KilnError) as e:
        ids(world, s, image_ids=(image_id,))
    assert code(e) == "InvalidAMIID.NotFound"
    share(world, image_id, add=[LaunchPermissionRecord(user_id=g.account_id)])
    assert ids(world, g, executable_users=("self",)) == [image_id]
    assert ids(world, s) == [] and ids(world, s, executable_users=("all",)) == []
    with pytest.raises(KilnError) as e:
        rules.deregister_image(world.svc, g, image_id)
    assert code(e) == "AuthFailure"
    share(world, image_id, remove=[LaunchPermissionRecord(user_id=g.account_id)])
    assert ids(world, g) == []
    share(world, image_id, add=[LaunchPermissionRecord(group="all")])
    assert ids(world, s, executable_users=("all",)) == [image_id]
    (img,) = describe_images(world.svc, s, DescribeImagesRequest(image_ids=(image_id,))).images
    assert img.is_public and img.tags == ()


def test_tags_are_private_to_the_tagging_account(world: World) -> None:
    image_id = world.register(world.owner, "tagged", tag_specs=(TagSpec("image", (("k", "v"),)),))
    share(world, image_id, add=[LaunchPermissionRecord(user_id=world.grantee.account_id)])
    create_tags(world.svc, world.grantee, [image_id], [("mine", "yes")], False)
    (as_owner,) = describe_images(
        world.svc, world.owner, DescribeImagesRequest(image_ids=(image_id,))
    ).images
    (as_grantee,) = describe_images(
        world.svc, world.grantee, DescribeImagesRequest(image_ids=(image_id,))
    ).images
    assert [(t.key, t.value) for t in as_owner.tags] == [("k", "v")]
    assert [(t.key, t.value) for t in as_grantee.tags] == [("mine", "yes")]


def test_deprecated_and_disabled_images(world: World) -> None:
    image_id = world.register(world.owner, "old-one")
    share(world, image_id, add=[LaunchPermissionRecord(group="all")])
    past = datetime.now(UTC) - timedelta(minutes=5)
    rules.enable_image_deprecation(world.svc, world.owner, image_id, past, False)
    assert ids(world, world.stranger) == []
    assert ids(world, world.stranger, include_deprecated=True) == [image_id]
    assert ids(world, world.owner) == [image_id]  # the owner always sees its deprecated images
    rules.disable_image_deprecation(world.svc, world.owner, image_id, False)
    assert ids(world, world.stranger) == [image_id]
    rules.disable_image(world.svc, world.owner, image_id, False)
    assert ids(world, world.owner) == [] and ids(world, world.stranger) == []
    assert ids(world, world.owner, include_disabled=True) == [image_id]
    rules.enable_image(world.svc, world.owner, image_id, False)
    assert ids(world, world.owner) == [image_id]
    assert ids(world, world.stranger) == []  # disabling made it private for good


def test_deregistration_protection(world: World) -> None:
    image_id = world.register(world.owner, "protected")
    assert (
        rules.enable_image_deregistration_protection(world.svc, world.owner, image_id, True, False)
        == "enabled-with-cooldown"
    )
    with pytest.raises(KilnError) as e:
        rules.deregister_image(world.svc, world.owner, image_id)
    assert code(e) == "InvalidParameterValue"
    state = rules.disable_image_deregistration_protection(world.svc, world.owner, image_id, False)
    assert state.startswith("disabled-until ")
    with pytest.raises(KilnError):
        rules.deregister_image(world.svc, world.owner, image_id)


def test_deregister_deletes_associated_snapshots(world: World) -> None:
    snap = world.snapshot(world.owner)
    image_id = world.register(world.owner, "with-snap", snapshot_id=snap)
    results = rules.deregister_image(world.svc, world.owner, image_id, True)
    assert [(r.snapshot_id, r.return_code) for r in results] == [(snap, "success")]
    assert ids(world, world.owner) == []
    with pytest.raises(KilnError) as e:
        world.register(world.owner, "again", snapshot_id=snap)
    assert code(e) == "InvalidSnapshot.NotFound"


def test_every_attribute_describes(world: World) -> None:
    image_id = world.register(world.owner, "attrs", boot_mode="uefi")
    for attribute in ATTRIBUTES:
        got = describe_image_attribute(world.svc, world.owner, image_id, attribute, False)
        assert got.image.image_id == image_id
    with pytest.raises(KilnError) as e:
        describe_image_attribute(world.svc, world.owner, image_id, "BootMode", False)
    assert code(e) == "InvalidRequest"
    modify_image_attribute(
        world.svc,
        world.owner,
        ModifyImageAttributeRequest(image_id=image_id, description="new words"),
    )
    got = describe_image_attribute(world.svc, world.owner, image_id, "description", False)
    assert got.image.description == "new words"
    with pytest.raises(KilnError) as e:
        modify_image_attribute(
            world.svc,
            world.owner,
            ModifyImageAttributeRequest(image_id=image_id, attribute="bootMode", description="x"),
        )
    assert code(e) == "InvalidParameterValue"
    share(world, image_id, add=[LaunchPermissionRecord(user_id=world.grantee.account_id)])
    reset_image_attribute(world.svc, world.owner, image_id, "launchPermission", False)
    got = describe_image_attribute(world.svc, world.owner, image_id, "launchPermission", False)
    assert got.launch_permissions == ()


def test_dry_run_answers_by_permission(world: World) -> None:
    image_id = world.register(world.owner, "dry")
    share(world, image_id, add=[LaunchPermissionRecord(user_id=world.grantee.account_id)])
    with pytest.raises(KilnError) as e:
        rules.disable_image(world.svc, world.owner, image_id, True)
    assert code(e) == "DryRunOperation"
    with pytest.raises(KilnError) as e:
        rules.disable_image(world.svc, world.grantee, image_id, True)
    assert code(e) == "UnauthorizedOperation"
    assert ids(world, world.owner) == [image_id]  # nothing changed


def test_deregistered_image_is_described_by_id_for_an_hour(world: World) -> None:
    """As EC2: right after DeregisterImage the owner still finds the image by its id, in state
    ``deregistered`` with its block devices (Ansible's ec2_ami reads them to delete the
    snapshots); listings, other accounts and, after the hour, the owner no longer see it."""
    snap = world.snapshot(world.owner)
    image_id = world.register(world.owner, "going", snapshot_id=snap)
    share(world, image_id, add=[LaunchPermissionRecord(group="all")])
    rules.deregister_image(world.svc, world.owner, image_id)
    (img,) = describe_images(
        world.svc, world.owner, DescribeImagesRequest(image_ids=(image_id,))
    ).images
    assert img.state == "deregistered"
    assert [bd.ebs.snapshot_id for bd in img.block_devices if bd.ebs] == [snap]
    assert ids(world, world.owner) == []
    assert ids(world, world.owner, filters=(Filter("image-id", (image_id,)),)) == []
    with pytest.raises(KilnError) as e:
        ids(world, world.stranger, image_ids=(image_id,))
    assert code(e) == "InvalidAMIID.NotFound"
    assert world.register(world.owner, "going", snapshot_id=snap) != image_id  # name is free
    long_ago = ec2_time(datetime.now(UTC) - timedelta(hours=1, minutes=1))
    with world.svc.catalog.write() as tx:
        update_image(tx, image_id, {"deregistered_at": long_ago})
    with pytest.raises(KilnError) as e:
        ids(world, world.owner, image_ids=(image_id,))
    assert code(e) == "InvalidAMIID.NotFound"


def test_eight_digit_ids_are_well_formed_and_missing_ones_are_named_as_ec2_does(
    world: World,
) -> None:
    from kiln.errors import KilnError

    for ids, message in (
        (("ami-1234abcd",), "The image id '[ami-1234abcd]' does not exist"),
        (
            ("ami-1234abcd", "ami-0123456789abcdef0"),
            "The image ids '[ami-1234abcd, ami-0123456789abcdef0]' do not exist",
        ),
    ):
        with pytest.raises(KilnError) as e:
            describe_images(world.svc, world.owner, DescribeImagesRequest(image_ids=ids))
        assert (e.value.code.code, e.value.message) == ("InvalidAMIID.NotFound", message)
    with pytest.raises(KilnError) as e:
        describe_images(world.svc, world.owner, DescribeImagesRequest(image_ids=("ami-12345",)))
    assert e.value.code.code == "InvalidAMIID.Malformed"
