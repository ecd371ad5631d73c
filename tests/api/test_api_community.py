"""The community catalog over HTTP (docs/community.md): public images of every account found with
``ExecutableUsers=all`` and ``Owners=<id | alias>``, owner aliases and verified providers set by
the operator (``kiln account alias|verify|unverify``), and CancelImageLaunchPermission, with
unmodified boto3 and the AWS CLI against a live ``kiln serve``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import ApiWorld, Creds
from botocore.exceptions import ClientError


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Community:
    """Three accounts of this module's own (the session's are shared with other tests): two
    publishers and a consumer."""

    api: ApiWorld
    publisher: Creds
    vendor: Creds
    consumer: Creds

    def ec2(self, creds: Creds) -> Any:
        return self.api.kiln.client(creds)

    def operator(self, *args: str) -> Any:
        """``kiln account ARGS`` as the operator runs it: (exit code, JSON or stderr)."""
        res = self.api.kiln.kiln(
            "account",
            *args,
            "--data-dir",
            str(self.api.kiln.data_dir),
            *self.api.kiln._db_args(),
        )
        return res.returncode, json.loads(res.stdout) if res.returncode == 0 else res.stderr

    def image(self, creds: Creds, name: str, *share: dict[str, str]) -> str:
        snap = self.api.kiln.snapshot(creds, self.api.disk)
        ec2 = self.ec2(creds)
        image_id = str(
            ec2.register_image(
                Name=name,
                RootDeviceName="/dev/xvda",
                VirtualizationType="hvm",
                BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
            )["ImageId"]
        )
        if share:
            ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": list(share)})
        return image_id


@pytest.fixture(scope="module")
def world(api: ApiWorld) -> Community:
    return Community(
        api,
        api.kiln.account("publisher"),
        api.kiln.account("vendor"),
        api.kiln.account("consumer"),
    )


def found(ec2: Any, family: str, **kw: Any) -> set[str]:
    """Ids DescribeImages answers among the images named ``family-*``."""
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": [f"{family}-*"]}], **kw)
    return {i["ImageId"] for i in images["Images"]}


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_public_images_of_every_account_are_found_with_executable_users_all(
    world: Community,
) -> None:
    family = uniq("community")
    pub_a = world.image(world.publisher, f"{family}-a", {"Group": "all"})
    pub_b = world.image(world.vendor, f"{family}-b", {"Group": "all"})
    shared = world.image(world.publisher, f"{family}-shared", {"UserId": world.consumer.account_id})
    private = world.image(world.vendor, f"{family}-private")
    consumer = world.ec2(world.consumer)

    assert found(consumer, family, ExecutableUsers=["all"]) == {pub_a, pub_b}
    assert found(consumer, family, ExecutableUsers=["self"]) == {shared}
    assert found(consumer, family, ExecutableUsers=[world.consumer.account_id]) == {shared}
    assert found(consumer, family) == {pub_a, pub_b, shared}
    assert found(consumer, family, ExecutableUsers=["all"], Owners=[world.vendor.account_id]) == {
        pub_b
    }
    assert found(
        consumer, family, ExecutableUsers=["all", "self"], Owners=[world.publisher.account_id]
    ) == {pub_a, shared}
    # Asked with another account's id, an owner learns which of its own images that account
    # may launch; a third party learns nothing about whom others share with.
    publisher = world.ec2(world.publisher)
    assert found(publisher, family, ExecutableUsers=[world.consumer.account_id]) == {shared}
    assert found(world.ec2(world.vendor), family, ExecutableUsers=[world.consumer.account_id]) == (
        set()
    )
    assert private not in found(consumer, family, ExecutableUsers=["all"])
    with pytest.raises(ClientError) as e:
        consumer.describe_images(ExecutableUsers=["everybody"])
    assert code_of(e) == "InvalidUserID.Malformed"
    assert e.value.response["Error"]["Message"] == 'Invalid user id: "everybody"'


def test_an_operator_alias_names_the_owner(world: Community) -> None:
    family = uniq("aliased")
    alias = uniq("pub")
    image = world.image(world.publisher, f"{family}-1", {"Group": "all"})
    consumer = world.ec2(world.consumer)
    with pytest.raises(ClientError) as e:
        consumer.describe_images(Owners=[alias])
    assert code_of(e) == "InvalidUserID.Malformed"

    rc, doc = world.operator("alias", world.publisher.account_id, alias)
    assert rc == 0 and doc["Alias"] == alias and doc["Verified"] is False
    try:
        assert found(consumer, family, Owners=[alias], ExecutableUsers=["all"]) == {image}
        (img,) = consumer.describe_images(ImageIds=[image])["Images"]
        assert img["ImageOwnerAlias"] == alias and img["OwnerId"] == world.publisher.account_id
        by_filter = consumer.describe_images(Filters=[{"Name": "owner-alias", "Values": [alias]}])[
            "Images"
        ]
        assert {i["ImageId"] for i in by_filter} >= {image}
        # Another account cannot take it; a bad alias is refused with the rule named.
        rc, err = world.operator("alias", world.vendor.account_id, alias)
        assert rc == 1 and err.count("\n") == 1 and "taken" in err
        rc, err = world.operator("alias", world.vendor.account_id, "Not_An_Alias")
        assert rc == 1 and err.startswith("error: InvalidParameterValue: alias")
    finally:
        rc, doc = world.operator("alias", world.publisher.account_id, "--clear")
    assert rc == 0 and doc["Alias"] is None
    (img,) = consumer.describe_images(ImageIds=[image])["Images"]
    assert "ImageOwnerAlias" not in img


def test_verified_providers_are_found_as_ec2_finds_verified_partners(world: Community) -> None:
    family = uniq("verified")
    image = world.image(world.vendor, f"{family}-os", {"Group": "all"})
    other = world.image(world.publisher, f"{family}-other", {"Group": "all"})
    consumer = world.ec2(world.consumer)
    assert found(consumer, family, Owners=["aws-marketplace"]) == set()

    rc, doc = world.operator("verify", world.vendor.account_id)
    assert rc == 0 and doc == {
        "AccountId": world.vendor.account_id,
        "Name": "vendor",
        "Alias": None,
        "Verified": True,
    }
    try:
        assert found(consumer, family, Owners=["aws-marketplace"]) == {image}
        assert found(consumer, family, Owners=["aws-marketplace", "self"]) == {image}
        marked = consumer.describe_images(
            Filters=[
                {"Name": "owner-alias", "Values": ["aws-marketplace"]},
                {"Name": "name", "Values": [f"{family}-*"]},
            ]
        )["Images"]
        assert [(i["ImageId"], i["ImageOwnerAlias"]) for i in marked] == [
            (image, "aws-marketplace")
        ]
        (plain,) = consumer.describe_images(ImageIds=[other])["Images"]
        assert "ImageOwnerAlias" not in plain
        # The AWS CLI, as a script looking for verified providers' images runs it.
        res = world.api.kiln.aws(
            world.consumer,
            "describe-images",
            "--owners",
            "amazon",
            "aws-marketplace",
            "--executable-users",
            "all",
            "--filters",
            f"Name=name,Values={family}-*",
            "--query",
            "Images[].[ImageId,ImageOwnerAlias]",
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == [[image, "aws-marketplace"]]
        listed = {a["AccountId"]: a for a in world.operator("ls")[1]}
        assert listed[world.vendor.account_id]["Verified"] is True
        assert listed[world.publisher.account_id]["Verified"] is False
    finally:
        rc, doc = world.operator("unverify", world.vendor.account_id)
    assert rc == 0 and doc["Verified"] is False
    assert found(consumer, family, Owners=["aws-marketplace"]) == set()
    (img,) = consumer.describe_images(ImageIds=[image])["Images"]
    assert "ImageOwnerAlias" not in img


def test_verify_an_unknown_account_is_one_line_and_exit_1(world: Community) -> None:
    for command in ("verify", "unverify"):
        for account in ("999999999999", "not-an-id"):
            rc, err = world.operator(command, account)
            assert rc == 1 and err.count("\n") == 1, err
            assert err.startswith("error: InvalidParameterValue:") and account in err
            assert "Traceback" not in err


def test_a_grantee_cancels_an_image_shared_with_it(world: Community) -> None:
    image = world.image(
        world.publisher,
        uniq("cancel"),
        {"UserId": world.consumer.account_id},
        {"UserId": world.vendor.account_id},
    )
    consumer = world.ec2(world.consumer)
    with pytest.raises(ClientError) as e:
        consumer.cancel_image_launch_permission(ImageId=image, DryRun=True)
    assert code_of(e) == "DryRunOperation"
    assert image in {
        i["ImageId"] for i in consumer.describe_images(ExecutableUsers=["self"])["Images"]
    }

    res = world.api.kiln.aws(world.consumer, "cancel-image-launch-permission", "--image-id", image)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"Return": True}

    assert image not in {
        i["ImageId"] for i in consumer.describe_images(ExecutableUsers=["self"])["Images"]
    }
    with pytest.raises(ClientError) as e:
        consumer.describe_images(ImageIds=[image])
    assert code_of(e) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:
        consumer.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert code_of(e) == "InvalidAMIID.NotFound"
    assert e.value.response["Error"]["Message"] == f"The image id '[{image}]' does not exist"
    assert (
        consumer.describe_instances(Filters=[{"Name": "image-id", "Values": [image]}])[
            "Reservations"
        ]
        == []
    )
    # The owner sees the grant gone; the other grantee keeps its own.
    perms = world.ec2(world.publisher).describe_image_attribute(
        ImageId=image, Attribute="launchPermission"
    )["LaunchPermissions"]
    assert perms == [{"UserId": world.vendor.account_id}]
    # Shared again by its owner, it is back.
    world.ec2(world.publisher).modify_image_attribute(
        ImageId=image, LaunchPermission={"Add": [{"UserId": world.consumer.account_id}]}
    )
    assert consumer.describe_images(ImageIds=[image])["Images"][0]["ImageId"] == image


def test_cancel_refusals_answer_not_found_and_change_nothing(world: Community) -> None:
    name = uniq("refuse")
    public = world.image(world.publisher, f"{name}-public", {"Group": "all"})
    private = world.image(world.publisher, f"{name}-private")
    own = world.image(world.consumer, f"{name}-own")
    consumer = world.ec2(world.consumer)
    for image in (public, private, own, "ami-0123456789abcdef0"):
        with pytest.raises(ClientError) as e:
            consumer.cancel_image_launch_permission(ImageId=image)
        assert code_of(e) == "InvalidAMIID.NotFound", image
        assert e.value.response["Error"]["Message"] == f"The image id '[{image}]' does not exist"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        consumer.cancel_image_launch_permission(ImageId="img-123")
    assert code_of(e) == "InvalidAMIID.Malformed"
    res = world.api.kiln.aws(world.consumer, "cancel-image-launch-permission", "--image-id", public)
    assert res.returncode != 0 and "InvalidAMIID.NotFound" in res.stderr
    (still,) = consumer.describe_images(ImageIds=[public])["Images"]
    assert still["Public"] is True
    perms = world.ec2(world.publisher).describe_image_attribute(
        ImageId=public, Attribute="launchPermission"
    )["LaunchPermissions"]
    assert perms == [{"Group": "all"}]
