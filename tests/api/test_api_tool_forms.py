"""The request forms real tools send that a strict reading of EC2's model refuses, with
unmodified boto3 and the AWS CLI against a live `kiln serve`: Packer's combined
launch-permission form, Packer's empty KmsKeyId, Ansible's describe after deregistering."""

from __future__ import annotations

import json
import secrets

import pytest
from api_live import REGIONS, ApiWorld
from botocore.exceptions import ClientError
from test_api_snapshots_support import wait_image


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def register(api: ApiWorld, name: str) -> tuple[str, str]:
    snap = api.kiln.snapshot(api.owner, api.disk)
    image_id = api.kiln.client(api.owner).register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
    )["ImageId"]
    return image_id, snap


def test_packer_ami_users_and_snapshot_users_form(api: ApiWorld) -> None:
    """Packer's ``ami_users``/``snapshot_users`` send the accounts both as
    ``LaunchPermission.Add`` and as ``UserId.N``, without ``OperationType``."""
    owner = api.kiln.client(api.owner)
    grantee = api.kiln.client(api.grantee)
    image_id, snap = register(api, uniq("packer-users"))
    who = api.grantee.account_id
    owner.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": who}]}, UserIds=[who]
    )
    got = owner.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert got["LaunchPermissions"] == [{"UserId": who}]
    assert [i["ImageId"] for i in grantee.describe_images(ImageIds=[image_id])["Images"]] == [
        image_id
    ]
    owner.modify_snapshot_attribute(
        SnapshotId=snap,
        Attribute="createVolumePermission",
        CreateVolumePermission={"Add": [{"UserId": who}]},
        UserIds=[who],
    )
    attr = owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert attr["CreateVolumePermissions"] == [{"UserId": who}]
    owner.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Remove": [{"UserId": who}]}, UserIds=[who]
    )
    with pytest.raises(ClientError) as e:
        grantee.describe_images(ImageIds=[image_id])
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    # The older lists alone still need an OperationType, as in EC2.
    with pytest.raises(ClientError) as e:
        owner.modify_image_attribute(ImageId=image_id, Attribute="launchPermission", UserIds=[who])
    assert e.value.response["Error"]["Code"] == "MissingParameter"


def test_packer_ami_regions_copy_with_empty_kms_key(api: ApiWorld) -> None:
    """Packer's ``ami_regions`` sends ``Encrypted=false`` and ``KmsKeyId=`` (empty), which EC2
    treats as no key."""
    image_id, _ = register(api, uniq("packer-copy"))
    there = api.kiln.client(api.owner, region=REGIONS[1])
    copy = there.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGIONS[0],
        Name=uniq("packer-copied"),
        Encrypted=False,
        KmsKeyId="",
    )["ImageId"]
    done = wait_image(there, copy)
    assert done["State"] == "available", done
    assert "KmsKeyId" not in done["BlockDeviceMappings"][0]["Ebs"]


def test_deregistered_image_is_still_described_by_id(api: ApiWorld) -> None:
    """Ansible's ``ec2_ami state=absent`` describes the image again after deregistering it;
    EC2 answers with state ``deregistered`` for a while (about an hour)."""
    image_id, snap = register(api, uniq("going"))
    owner = api.kiln.client(api.owner)
    owner.deregister_image(ImageId=image_id)
    res = api.kiln.aws(api.owner, "describe-images", "--image-ids", image_id)
    assert res.returncode == 0, res.stderr
    (img,) = json.loads(res.stdout)["Images"]
    assert img["State"] == "deregistered"
    assert img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap
    mine = owner.describe_images(Owners=["self"])["Images"]
    assert image_id not in [i["ImageId"] for i in mine]
    owner.delete_snapshot(SnapshotId=snap)  # no longer in use by a registered image
    with pytest.raises(ClientError) as e:
        api.kiln.client(api.stranger).describe_images(ImageIds=[image_id])
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


def test_kms_describes_the_keys_ebs_names(api: ApiWorld) -> None:
    """Packer and Terraform look up the key an encrypted volume names (its ARN) and EBS's
    default key by its alias through KMS's DescribeKey."""
    ec2 = api.kiln.client(api.owner)
    kms = api.kiln.client(api.owner, service="kms")
    vol = ec2.create_volume(AvailabilityZone=f"{REGIONS[0]}a", Size=1, Encrypted=True)
    arn = vol["KmsKeyId"]
    assert arn.startswith(f"arn:aws:kms:{REGIONS[0]}:{api.owner.account_id}:key/")
    by_arn = kms.describe_key(KeyId=arn)["KeyMetadata"]
    by_alias = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert by_arn["Arn"] == by_alias["Arn"] == arn
    assert by_alias["KeyManager"] == "AWS" and by_alias["Enabled"] is True
    ec2.get_waiter("volume_available").wait(
        VolumeIds=[vol["VolumeId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ec2.delete_volume(VolumeId=vol["VolumeId"])
