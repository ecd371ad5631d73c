"""Images over HTTP with unmodified boto3 against a live `kiln serve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from api_live import ApiWorld
from botocore.exceptions import ClientError


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def register(api: ApiWorld, creds, name: str, **kw):  # type: ignore[no-untyped-def]
    snap = api.kiln.snapshot(creds, api.disk)
    ec2 = api.kiln.client(creds)
    return ec2.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        **kw,
    )["ImageId"]


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_register_describe_filter_paginate(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    family = uniq("fam")
    made = [
        register(
            api,
            api.owner,
            f"{family}-{n}",
            TagSpecifications=[
                {
                    "ResourceType": "image",
                    "Tags": [{"Key": "tier", "Value": "web" if n % 2 else "db"}],
                }
            ],
        )
        for n in range(7)
    ]
    found = ec2.describe_images(
        Owners=["self"],
        Filters=[
            {"Name": "name", "Values": [f"{family}-*"]},
            {"Name": "tag:tier", "Values": ["w?b"]},
        ],
    )
    assert sorted(i["ImageId"] for i in found["Images"]) == sorted(made[1::2])
    img = next(i for i in found["Images"] if i["ImageId"] == made[1])
    assert img["State"] == "available" and img["OwnerId"] == api.owner.account_id
    assert img["RootDeviceType"] == "ebs" and img["VirtualizationType"] == "hvm"
    assert img["Tags"] == [{"Key": "tier", "Value": "web"}]
    assert img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 1
    pages = ec2.get_paginator("describe_images").paginate(
        Owners=["self"],
        Filters=[{"Name": "name", "Values": [f"{family}-*"]}],
        PaginationConfig={"PageSize": 5},
    )
    sizes, seen = [], []
    for page in pages:
        sizes.append(len(page["Images"]))
        seen += [i["ImageId"] for i in page["Images"]]
    assert sorted(seen) == sorted(made) and sizes == [5, 2]


def test_share_across_three_accounts(api: ApiWorld) -> None:
    owner, grantee, stranger = (api.kiln.client(c) for c in (api.owner, api.grantee, api.stranger))
    image_id = register(api, api.owner, uniq("shared"))
    grant = {"Add": [{"UserId": api.grantee.account_id}]}

    def visible(ec2, **kw) -> list[str]:  # type: ignore[no-untyped-def]
        return [i["ImageId"] for i in ec2.describe_images(**kw)["Images"]]

    assert image_id not in visible(grantee, ExecutableUsers=["self"])
    owner.modify_image_attribute(ImageId=image_id, LaunchPermission=grant)
    assert image_id in visible(grantee, ExecutableUsers=["self"])
    assert image_id in visible(grantee, ImageIds=[image_id])
    perms = owner.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [{"UserId": api.grantee.account_id}]
    # The stranger sees nothing and can do nothing.
    assert image_id not in visible(stranger)
    assert image_id not in visible(stranger, Owners=[api.owner.account_id])
    for call in (
        lambda: stranger.describe_images(ImageIds=[image_id]),
        lambda: stranger.deregister_image(ImageId=image_id),
        lambda: stranger.modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"UserId": api.stranger.account_id}]}
        ),
        lambda: stranger.create_tags(Resources=[image_id], Tags=[{"Key": "a", "Value": "b"}]),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "InvalidAMIID.NotFound"
    snap = owner.describe_image_attribute(ImageId=image_id, Attribute="blockDeviceMapping")[
        "BlockDeviceMappings"
    ][0]["Ebs"]["SnapshotId"]
    with pytest.raises(ClientError) as e:
        stranger.register_image(
            Name=uniq("steal"),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )
    assert error_code(e) == "InvalidSnapshot.NotFound"
    # The grantee may look but not change.
    with pytest.raises(ClientError) as e:
        grantee.deregister_image(ImageId=image_id)
    assert error_code(e) == "AuthFailure"
    owner.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Remove": [{"UserId": api.grantee.account_id}]}
    )
    assert image_id not in visible(grantee)
    with pytest.raises(ClientError) as e:
        grantee.describe_images(ImageIds=[image_id])
    assert error_code(e) == "InvalidAMIID.NotFound"


def test_public_via_group_all(api: ApiWorld) -> None:
    owner, stranger = api.kiln.client(api.owner), api.kiln.client(api.stranger)
    image_id = register(api, api.owner, uniq("public"))
    owner.modify_image_attribute(
        ImageId=image_id, Attribute="launchPermission", OperationType="add", UserGroups=["all"]
    )
    found = stranger.describe_images(
        ExecutableUsers=["all"], Filters=[{"Name": "image-id", "Values": [image_id]}]
    )["Images"]
    assert [i["ImageId"] for i in found] == [image_id] and found[0]["Public"] is True
    assert "Tags" not in found[0]
    owner.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert (
        stranger.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"]
        == []
    )


def test_deprecate_disable_deregister(api: ApiWorld) -> None:
    owner, stranger = api.kiln.client(api.owner), api.kiln.client(api.stranger)
    image_id = register(api, api.owner, uniq("life"))
    owner.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    by_id = [{"Name": "image-id", "Values": [image_id]}]
    soon = datetime.now(UTC) - timedelta(minutes=1)
    assert owner.enable_image_deprecation(ImageId=image_id, DeprecateAt=soon)["Return"] is True
    assert stranger.describe_images(Filters=by_id)["Images"] == []
    got = stranger.describe_images(Filters=by_id, IncludeDeprecated=True)["Images"]
    assert got[0]["DeprecationTime"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))
    owner.disable_image_deprecation(ImageId=image_id)
    assert "DeprecationTime" not in owner.describe_images(ImageIds=[image_id])["Images"][0]
    owner.disable_image(ImageId=image_id)
    assert owner.describe_images(Filters=by_id)["Images"] == []
    got = owner.describe_images(Filters=by_id, IncludeDisabled=True)["Images"]
    assert got[0]["State"] == "disabled" and got[0]["Public"] is False
    assert stranger.describe_images(Filters=by_id, IncludeDisabled=True)["Images"] == []
    owner.enable_image(ImageId=image_id)
    assert owner.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    owner.enable_image_deregistration_protection(ImageId=image_id)
    with pytest.raises(ClientError):
        owner.deregister_image(ImageId=image_id)
    owner.disable_image_deregistration_protection(ImageId=image_id)
    res = owner.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert res["DeleteSnapshotResults"][0]["ReturnCode"] == "success"
    assert owner.describe_images(Filters=by_id)["Images"] == []
    with pytest.raises(ClientError) as e:
        owner.deregister_image(ImageId=image_id)
    assert error_code(e) == "InvalidAMIID.Unavailable"


def test_every_image_attribute(api: ApiWorld) -> None:
    owner = api.kiln.client(api.owner)
    image_id = register(
        api,
        api.owner,
        uniq("attrs"),
        BootMode="uefi",
        TpmSupport="v2.0",
        ImdsSupport="v2.0",
        SriovNetSupport="simple",
        EnaSupport=True,
        Description="first words",
    )
    expected = {
        "description": ("Description", "first words"),
        "bootMode": ("BootMode", "uefi"),
        "tpmSupport": ("TpmSupport", "v2.0"),
        "imdsSupport": ("ImdsSupport", "v2.0"),
        "sriovNetSupport": ("SriovNetSupport", "simple"),
        "deregistrationProtection": ("DeregistrationProtection", "disabled"),
        "kernel": ("KernelId", None),
        "ramdisk": ("RamdiskId", None),
        "uefiData": ("UefiData", None),
        "lastLaunchedTime": ("LastLaunchedTime", None),
    }
    for attribute, (key, value) in expected.items():
        got = owner.describe_image_attribute(ImageId=image_id, Attribute=attribute)
        assert got[key].get("Value") == value, attribute
    assert (
        owner.describe_image_attribute(ImageId=image_id, Attribute="productCodes")["ProductCodes"]
        == []
    )
    assert (
        owner.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
            "LaunchPermissions"
        ]
        == []
    )
    bdm = owner.describe_image_attribute(ImageId=image_id, Attribute="blockDeviceMapping")
    assert bdm["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    owner.modify_image_attribute(ImageId=image_id, Description={"Value": "second words"})
    assert (
        owner.describe_image_attribute(ImageId=image_id, Attribute="description")["Description"][
            "Value"
        ]
        == "second words"
    )
    owner.modify_image_attribute(ImageId=image_id, ProductCodes=["abcdefgh12345678"])
    codes = owner.describe_image_attribute(ImageId=image_id, Attribute="productCodes")
    assert codes["ProductCodes"] == [
        {"ProductCodeId": "abcdefgh12345678", "ProductCodeType": "marketplace"}
    ]


def test_instance_store_image_from_bundle(api: ApiWorld) -> None:
    res = api.kiln.kiln(
        "snapshot", "import", str(api.disk), "--data-dir", str(api.kiln.data_dir), "--json"
    )
    assert res.returncode == 0, res.stderr
    part = json.loads(res.stdout)["snapshot_id"]
    location = f"{uniq('bucket')}/image.manifest.json"
    path = api.kiln.data_dir / "regions" / "us-east-1" / "bundles" / location
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "format": "kiln-bundle/1",
                "image_type": "machine",
                "architecture": "x86_64",
                "image": {"snapshot_id": part},
            }
        )
    )
    ec2 = api.kiln.client(api.owner)
    image_id = ec2.register_image(Name=uniq("bundle"), ImageLocation=location)["ImageId"]
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert img["RootDeviceType"] == "instance-store" and img["ImageLocation"] == location
    with pytest.raises(ClientError) as e:
        ec2.register_image(Name=uniq("bundle"), ImageLocation="nobucket/missing.manifest.json")
    assert error_code(e) == "InvalidParameterValue"
