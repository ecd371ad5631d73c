"""Tags over HTTP, and the AWS CLI (awscli from PyPI) driving the same server."""

from __future__ import annotations

import json

from api_live import ApiWorld
from test_api_images import register, uniq


def test_create_delete_describe_tags(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    image_id = register(api, api.owner, uniq("tags"))
    ec2.create_tags(
        Resources=[image_id],
        Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "infra"}],
    )
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "env", "Value": "staging"}])
    got = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [image_id]}])["Tags"]
    assert [(t["Key"], t["Value"], t["ResourceType"]) for t in got] == [
        ("env", "staging", "image"),
        ("team", "infra", "image"),
    ]
    ec2.delete_tags(Resources=[image_id], Tags=[{"Key": "env", "Value": "prod"}])  # value differs
    ec2.delete_tags(Resources=[image_id], Tags=[{"Key": "team"}])
    got = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [image_id]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in got] == [("env", "staging")]
    snap = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    ec2.create_tags(Resources=[snap], Tags=[{"Key": "of", "Value": image_id}])
    got = ec2.describe_tags(
        Filters=[
            {"Name": "resource-type", "Values": ["snapshot"]},
            {"Name": "value", "Values": [image_id]},
        ]
    )["Tags"]
    assert [(t["ResourceId"], t["Key"]) for t in got] == [(snap, "of")]
    # Another account sees none of these tags.
    other = api.kiln.client(api.grantee).describe_tags(
        Filters=[{"Name": "resource-id", "Values": [image_id, snap]}]
    )["Tags"]
    assert other == []


def test_aws_cli_register_and_describe(api: ApiWorld) -> None:
    snap = api.kiln.snapshot(api.owner, api.disk)
    name = uniq("cli")
    res = api.kiln.aws(
        api.owner,
        "register-image",
        "--name",
        name,
        "--root-device-name",
        "/dev/sda1",
        "--virtualization-type",
        "hvm",
        "--block-device-mappings",
        json.dumps(
            [
                {
                    "DeviceName": "/dev/sda1",
                    "Ebs": {
                        "SnapshotId": snap,
                        "VolumeType": "gp3",
                        "Iops": 3000,
                        "Throughput": 125,
                    },
                }
            ]
        ),
        "--tag-specifications",
        "ResourceType=image,Tags=[{Key=made-by,Value=aws-cli}]",
    )
    assert res.returncode == 0, res.stderr
    image_id = json.loads(res.stdout)["ImageId"]
    res = api.kiln.aws(
        api.owner,
        "describe-images",
        "--owners",
        "self",
        "--filters",
        f"Name=name,Values={name}",
        "Name=tag:made-by,Values=aws-*",
    )
    assert res.returncode == 0, res.stderr
    (img,) = json.loads(res.stdout)["Images"]
    assert img["ImageId"] == image_id
    assert img["BlockDeviceMappings"][0]["Ebs"]["Throughput"] == 125
    res = api.kiln.aws(api.stranger, "describe-images", "--image-ids", image_id)
    assert res.returncode != 0 and "InvalidAMIID.NotFound" in res.stderr
