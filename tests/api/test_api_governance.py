"""The account-level image controls end to end, through unmodified boto3 and the AWS CLI against
a live ``kiln serve``: block public access for AMIs, Allowed AMIs (audit mode and enabled, with
DescribeImages pages and a refused launch) and the operator's quotas (``kiln account quota``).
docs/governance.md, docs/quotas.md.

One server for the module (SQLite). Settings and quotas are per account and region; each test
uses an account and region pair no other test's counts or settings touch.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import Creds, LiveKiln, make_disk
from botocore.exceptions import ClientError


@dataclass
class GovWorld:
    kiln: LiveKiln
    owner: Creds
    buyer: Creds
    vendor: Creds
    other: Creds

    def ec2(self, creds: Creds, region: str) -> Any:
        return self.kiln.client(creds, region)

    def image(self, creds: Creds, region: str, name: str, snap: str | None = None) -> str:
        if snap is None:
            disk = make_disk(self.kiln.data_dir / f"{name}.raw", seed=secrets.token_bytes(8))
            snap = self.kiln.snapshot(creds, disk, region)
        return str(
            self.ec2(creds, region).register_image(
                Name=name,
                RootDeviceName="/dev/xvda",
                VirtualizationType="hvm",
                Architecture="x86_64",
                BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
            )["ImageId"]
        )

    def make_public(self, creds: Creds, region: str, image_id: str) -> None:
        self.ec2(creds, region).modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GovWorld]:
    kiln = LiveKiln(tmp_path_factory.mktemp("kiln-governance"), None)
    kiln.start()
    try:
        yield GovWorld(
            kiln,
            kiln.account("owner"),
            kiln.account("buyer"),
            kiln.account("vendor"),
            kiln.account("other"),
        )
    finally:
        kiln.stop()


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as e:
        call()
    return dict(e.value.response["Error"])


def _public_ids(ec2: Any) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(ExecutableUsers=["all"])["Images"]}


# --- block public access ----------------------------------------------------------------------


def test_block_public_access_refuses_a_new_public_share_and_keeps_an_old_one(
    world: GovWorld,
) -> None:
    region = "us-east-1"
    ec2 = world.ec2(world.owner, region)
    old = world.image(world.owner, region, "bpa-old")
    snap = ec2.describe_images(ImageIds=[old])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
    new = world.image(world.owner, region, "bpa-new", snap["SnapshotId"])
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    world.make_public(world.owner, region, old)

    got = ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    assert got["ImageBlockPublicAccessState"] == "block-new-sharing"
    state = ec2.get_image_block_public_access_state()
    assert state["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert state["ManagedBy"] == "account"

    err = _error(lambda: world.make_public(world.owner, region, new))
    assert err["Code"] == "OperationNotPermitted"
    assert "block public access for AMIs is enabled" in err["Message"]
    assert "DisableImageBlockPublicAccess" in err["Message"]
    # nothing changed: the new image is still private, the old one still public
    seen = _public_ids(world.ec2(world.buyer, region))
    assert old in seen and new not in seen
    perms = ec2.describe_image_attribute(ImageId=new, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == []
    # sharing with an account is not public sharing
    ec2.modify_image_attribute(
        ImageId=new, LaunchPermission={"Add": [{"UserId": world.buyer.account_id}]}
    )
    # a dry run answers first, as every EC2 dry run does
    assert (
        _error(lambda: ec2.disable_image_block_public_access(DryRun=True))["Code"]
        == "DryRunOperation"
    )
    assert (
        _error(lambda: ec2.enable_image_block_public_access(ImageBlockPublicAccessState="on"))[
            "Code"
        ]
        == "InvalidParameterValue"
    )
    # the setting is per region: eu-west-1 is unaffected
    west = world.ec2(world.owner, "eu-west-1")
    assert west.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == (
        "unblocked"
    )

    # the AWS CLI turns it off; then the share goes through
    res = world.kiln.aws(world.owner, "disable-image-block-public-access", region=region)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["ImageBlockPublicAccessState"] == "unblocked"
    world.make_public(world.owner, region, new)
    assert new in _public_ids(world.ec2(world.buyer, region))


# --- allowed AMIs -----------------------------------------------------------------------------


def test_allowed_images_audit_mode_marks_and_enabled_hides_and_refuses(world: GovWorld) -> None:
    region = "eu-west-1"
    vendor_imgs = [world.image(world.vendor, region, f"vendor-app-{n}") for n in range(3)]
    other_imgs = [world.image(world.other, region, f"other-app-{n}") for n in range(4)]
    for creds, ids in ((world.vendor, vendor_imgs), (world.other, other_imgs)):
        for image_id in ids:
            world.make_public(creds, region, image_id)
    mine = world.image(world.buyer, region, "buyer-own")
    ec2 = world.ec2(world.buyer, region)

    got = ec2.get_allowed_images_settings()
    assert got["State"] == "disabled" and "ImageCriteria" not in got
    assert all("ImageAllowed" not in i for i in ec2.describe_images(ImageIds=[mine])["Images"])

    crit = [{"ImageProviders": [world.vendor.account_id]}, {"ImageNames": ["other-app-3"]}]
    assert ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=crit)["ReturnValue"]
    assert ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")[
        "AllowedImagesSettingsState"
    ] == ("audit-mode")
    got = ec2.get_allowed_images_settings()
    assert got["State"] == "audit-mode"
    assert got["ImageCriteria"] == crit

    marks = {
        i["ImageId"]: i["ImageAllowed"]
        for i in ec2.describe_images(ExecutableUsers=["all"])["Images"]
    }
    assert all(marks[i] is True for i in vendor_imgs)
    assert [marks[i] for i in other_imgs] == [False, False, False, True]
    assert ec2.describe_images(ImageIds=[mine])["Images"][0]["ImageAllowed"] is True
    # audit mode restricts nothing: a launch of a disallowed image is accepted
    run = ec2.run_instances(ImageId=other_imgs[0], MinCount=1, MaxCount=1, InstanceType="t2.micro")
    iid = run["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])

    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="enabled")
    seen = [i for i in ec2.describe_images(ExecutableUsers=["all"])["Images"]]
    assert {i["ImageId"] for i in seen} == {*vendor_imgs, other_imgs[3]}
    assert all(i["ImageAllowed"] is True for i in seen)
    # pages of the smallest size are filled from the rows past those left out
    paged: list[str] = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=[world.other.account_id, world.vendor.account_id],
        PaginationConfig={"PageSize": 5},
    ):
        paged += [i["ImageId"] for i in page["Images"]]
    assert sorted(paged) == sorted({*vendor_imgs, other_imgs[3]})
    # an account's own images are always allowed
    assert ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"] == mine

    err = _error(
        lambda: ec2.run_instances(
            ImageId=other_imgs[1], MinCount=1, MaxCount=1, InstanceType="t2.micro"
        )
    )
    assert err["Code"] == "UnauthorizedOperation"
    assert other_imgs[1] in err["Message"] and "Allowed AMIs" in err["Message"]
    before = ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [other_imgs[1]]}])[
        "Reservations"
    ]
    assert before == []  # the refused launch made nothing
    # the owner of the images is not restricted by the buyer's settings
    vendor = world.ec2(world.other, region)
    assert len(vendor.describe_images(Owners=["self"])["Images"]) == 4

    # bad criteria are refused with the member named, and change nothing
    for bad, named in (
        ([{"ImageProviders": ["bogus"]}], "ImageProviders"),
        ([{"ImageProviders": ["none", world.vendor.account_id]}], "none"),
        ([{"ImageProviders": ["amazon"]}] * 11, "at most 10"),
        ([{"ImageNames": ["app#1"]}], "ImageNames"),
    ):
        err = _error(
            lambda bad=bad: ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=bad)
        )
        assert err["Code"] == "InvalidParameterValue" and named in err["Message"], err
    assert ec2.get_allowed_images_settings()["ImageCriteria"] == crit

    # the AWS CLI reads the same settings; disabling restores every image
    res = world.kiln.aws(world.buyer, "get-allowed-images-settings", region=region)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["State"] == "enabled"
    assert ec2.disable_allowed_images_settings()["AllowedImagesSettingsState"] == "disabled"
    assert set(other_imgs) <= _public_ids(ec2)


# --- quotas -----------------------------------------------------------------------------------


def _quota(world: GovWorld, account: str, *args: str) -> Any:
    return world.kiln.kiln(
        "account", "quota", account, *args, "--data-dir", str(world.kiln.data_dir), "--json"
    )


def test_quotas_refuse_the_next_image_share_and_public_image(world: GovWorld) -> None:
    region = "us-east-1"  # the vendor has no images here
    who = world.vendor.account_id
    res = _quota(world, who)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["Quotas"] == {
        "images": None,
        "snapshots": None,
        "public-images": None,
        "shares-per-image": None,
    }
    first = world.image(world.vendor, region, "quota-1")
    ec2 = world.ec2(world.vendor, region)
    snap = ec2.describe_images(ImageIds=[first])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
    res = _quota(world, who, "--images", "2", "--public-images", "0", "--shares-per-image", "1")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["Quotas"]["images"] == 2

    second = world.image(world.vendor, region, "quota-2", snap["SnapshotId"])
    err = _error(lambda: world.image(world.vendor, region, "quota-3", snap["SnapshotId"]))
    assert err["Code"] == "ResourceLimitExceeded"
    assert "quota of 2 AMIs" in err["Message"]
    names = {i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert names == {"quota-1", "quota-2"}
    # CopyImage is an image path too
    err = _error(
        lambda: ec2.copy_image(Name="quota-copy", SourceImageId=first, SourceRegion=region)
    )
    assert err["Code"] == "ResourceLimitExceeded"

    ec2.modify_image_attribute(
        ImageId=second, LaunchPermission={"Add": [{"UserId": world.buyer.account_id}]}
    )
    err = _error(
        lambda: ec2.modify_image_attribute(
            ImageId=second, LaunchPermission={"Add": [{"UserId": world.other.account_id}]}
        )
    )
    assert err["Code"] == "ResourceLimitExceeded" and "shared with" in err["Message"]
    err = _error(lambda: world.make_public(world.vendor, region, first))
    assert err["Code"] == "ResourceLimitExceeded" and "public AMIs" in err["Message"]
    assert first not in _public_ids(world.ec2(world.buyer, region))

    # the snapshot limit: the account has one snapshot in the region
    res = _quota(world, who, "--snapshots", "1")
    assert res.returncode == 0, res.stderr
    err = _error(
        lambda: ec2.copy_snapshot(SourceSnapshotId=snap["SnapshotId"], SourceRegion=region)
    )
    assert err["Code"] == "SnapshotLimitExceeded"

    # a value that does not parse: one line naming the option, exit 1, nothing stored
    res = _quota(world, who, "--images", "many")
    assert res.returncode == 1
    assert "--images" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = _quota(world, "999999999999")
    assert res.returncode == 1 and "999999999999" in res.stderr
    assert json.loads(_quota(world, who).stdout)["Quotas"]["images"] == 2

    # 'none' lifts a limit
    res = _quota(world, who, "--images", "none", "--public-images", "none")
    assert res.returncode == 0, res.stderr
    world.image(world.vendor, region, "quota-3", snap["SnapshotId"])
    world.make_public(world.vendor, region, first)
    assert first in _public_ids(world.ec2(world.buyer, region))
