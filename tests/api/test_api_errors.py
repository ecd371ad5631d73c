"""Every image error code, as boto3 sees it from a live server: code, HTTP status, RequestId."""

from __future__ import annotations

import secrets

import boto3
import pytest
from api_live import ApiWorld
from botocore.config import Config
from botocore.exceptions import ClientError
from test_api_images import register, uniq


def expect(code: str, status: int, call) -> ClientError:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    assert err["Error"]["Code"] == code, err["Error"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err["ResponseMetadata"]["RequestId"]
    return e.value


def test_image_error_codes(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    name = uniq("errs")
    image_id = register(api, api.owner, name)
    snap = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    bdm = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}]
    expect("InvalidAMIID.Malformed", 400, lambda: ec2.describe_images(ImageIds=["ami-xyz"]))
    err = expect(
        "InvalidAMIID.NotFound",
        400,
        lambda: ec2.describe_images(ImageIds=["ami-0123456789abcdef0"]),
    )
    assert "ami-0123456789abcdef0" in str(err)
    expect(
        "InvalidAMIName.Duplicate",
        400,
        lambda: ec2.register_image(Name=name, RootDeviceName="/dev/xvda", BlockDeviceMappings=bdm),
    )
    expect(
        "InvalidAMIName.Malformed",
        400,
        lambda: ec2.register_image(
            Name="bad!name", RootDeviceName="/dev/xvda", BlockDeviceMappings=bdm
        ),
    )
    expect(
        "InvalidParameterValue",
        400,
        lambda: ec2.register_image(
            Name=uniq("big"),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeSize": 99999}}
            ],
        ),
    )
    expect(
        "InvalidBlockDeviceMapping",
        400,
        lambda: ec2.register_image(
            Name=uniq("small"),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}},
                {"DeviceName": "xvda", "VirtualName": "ephemeral0"},
            ],
        ),
    )
    expect("MissingParameter", 400, lambda: ec2.register_image(Name=uniq("nothing")))
    expect(
        "InvalidParameterCombination",
        400,
        lambda: ec2.register_image(
            Name=uniq("iops"),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {"SnapshotId": snap, "VolumeType": "gp2", "Iops": 3000},
                }
            ],
        ),
    )
    expect(
        "InvalidParameterCombination",
        400,
        lambda: ec2.describe_images(ImageIds=[image_id], MaxResults=5),
    )
    expect(
        "InvalidFilter",
        400,
        lambda: ec2.describe_images(Filters=[{"Name": "colour", "Values": ["blue"]}]),
    )
    expect(
        "InvalidSnapshot.NotFound",
        400,
        lambda: ec2.register_image(
            Name=uniq("nosnap"),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}
            ],
        ),
    )
    expect("InvalidUserID.Malformed", 400, lambda: ec2.describe_images(Owners=["nobody?"]))
    expect(
        "InvalidAMIAttributeItemValue",
        400,
        lambda: ec2.modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"UserId": "999999999998"}]}
        ),
    )
    # The attribute enum is checked by the protocol layer against botocore's model.
    expect(
        "InvalidParameterValue",
        400,
        lambda: ec2.describe_image_attribute(ImageId=image_id, Attribute="TpmSupport"),
    )
    expect("InvalidPaginationToken", 400, lambda: ec2.describe_images(NextToken="nope"))
    expect("DryRunOperation", 412, lambda: ec2.disable_image(ImageId=image_id, DryRun=True))
    expect(
        "DryRunOperation",
        412,
        lambda: ec2.create_tags(
            Resources=[image_id], Tags=[{"Key": "k", "Value": "v"}], DryRun=True
        ),
    )
    grantee = api.kiln.client(api.grantee)
    ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": api.grantee.account_id}]}
    )
    # A dry run is answered before any other check, as EC2 answers an account's root user:
    # whose the image is, whether it exists and whether the id is well formed do not matter.
    for dry in (
        lambda: grantee.deregister_image(ImageId=image_id, DryRun=True),
        lambda: ec2.deregister_image(ImageId="ami-0123456789abcdef0", DryRun=True),
        lambda: ec2.enable_image(ImageId="ami-nothex", DryRun=True),
        lambda: ec2.run_instances(
            ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, DryRun=True
        ),
        lambda: ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"], DryRun=True),
    ):
        expect("DryRunOperation", 412, dry)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    expect("AuthFailure", 400, lambda: grantee.deregister_image(ImageId=image_id))
    ec2.deregister_image(ImageId=image_id)
    expect(
        "InvalidAMIID.Unavailable",
        400,
        lambda: ec2.describe_image_attribute(ImageId=image_id, Attribute="description"),
    )
    assert (
        ec2.describe_images(Owners=["self"], Filters=[{"Name": "image-id", "Values": [image_id]}])[
            "Images"
        ]
        == []
    )


def test_auth_failures(api: ApiWorld) -> None:
    def client(key: str, secret: str, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
        return boto3.client(
            "ec2",
            endpoint_url=api.kiln.url,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )

    o = api.owner
    expect("AuthFailure", 401, lambda: client(o.access_key_id, "wrong" * 8).describe_images())
    expect(
        "AuthFailure", 401, lambda: client("AKIA" + "Z" * 16, o.secret_access_key).describe_images()
    )
    err = expect(
        "AuthFailure",
        401,
        lambda: client(o.access_key_id, o.secret_access_key, "ap-south-9").describe_images(),
    )
    assert "ap-south-9" in str(err)
    images = client(o.access_key_id, o.secret_access_key, "ap-south-1").describe_images(
        Owners=["self"]
    )["Images"]
    assert images == []  # regions are separate namespaces (no test uses ap-south-1)


def test_unsupported_action_is_invalid_action(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    expect("InvalidAction", 400, lambda: ec2.describe_route_tables())


def test_account_created_while_serving_works_at_once(api: ApiWorld) -> None:
    account_id = f"{secrets.randbelow(9 * 10**11) + 10**11}"
    creds = api.kiln.account("late", "--account-id", account_id)
    assert creds.account_id == account_id
    res = api.kiln.client(creds).describe_images(Owners=["self"])
    assert res["Images"] == []
    again = api.kiln.kiln(
        "account",
        "create",
        "--name",
        "dup",
        "--account-id",
        account_id,
        "--data-dir",
        str(api.kiln.data_dir),
        *api.kiln._db_args(),
    )
    assert again.returncode != 0 and again.stderr.startswith("error: ")
    assert len(again.stderr.strip().splitlines()) == 1
