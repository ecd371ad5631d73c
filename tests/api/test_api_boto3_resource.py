"""boto3's resource API (``boto3.resource("ec2")``) and the client's waiters against a live
`kiln serve`: collections with filters and paging, resource attributes loaded lazily, actions
on a resource, its sub-resources (an image's snapshot), waiters on images and snapshots."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from api_live import ApiWorld


def test_boto3_resource_api_and_waiters(api: ApiWorld) -> None:
    creds = api.kiln.account("resource-api")
    snap = api.kiln.snapshot(creds, api.disk)
    ec2 = boto3.resource(
        "ec2",
        endpoint_url=api.kiln.url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )
    client = ec2.meta.client
    tag = secrets.token_hex(4)
    ids = []
    for n in range(7):
        made = client.register_image(
            Name=f"res-{tag}-{n}",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )
        ids.append(made["ImageId"])
    client.get_waiter("image_available").wait(ImageIds=ids)
    client.get_waiter("image_exists").wait(ImageIds=ids[:1])

    image = ec2.Image(ids[0])
    assert image.name == f"res-{tag}-0"  # loaded lazily by DescribeImages
    assert image.state == "available" and image.root_device_name == "/dev/xvda"
    assert image.block_device_mappings[0]["Ebs"]["SnapshotId"] == snap
    image.create_tags(Tags=[{"Key": "Tier", "Value": "gold"}])
    image.reload()
    assert {t["Key"]: t["Value"] for t in image.tags} == {"Tier": "gold"}
    image.modify_attribute(Description={"Value": "from the resource API"})
    assert image.describe_attribute(Attribute="description")["Description"] == {
        "Value": "from the resource API"
    }
    # a collection with filters, paged by the resource layer in pages of 5
    found = list(
        ec2.images.filter(
            Owners=["self"], Filters=[{"Name": "name", "Values": [f"res-{tag}-*"]}]
        ).page_size(5)
    )
    assert sorted(i.id for i in found) == sorted(ids)
    gold = list(
        ec2.images.filter(Owners=["self"], Filters=[{"Name": "tag:Tier", "Values": ["gold"]}])
    )
    assert [i.id for i in gold] == [ids[0]]

    snapshot = ec2.Snapshot(snap)
    assert snapshot.state == "completed" and snapshot.owner_id == creds.account_id
    client.get_waiter("snapshot_completed").wait(SnapshotIds=[snap])
    key = ec2.create_key_pair(KeyName=f"res-{tag}")
    assert key.key_name == f"res-{tag}" and "BEGIN" in key.key_material
    assert [k.name for k in ec2.key_pairs.filter(KeyNames=[f"res-{tag}"])] == [f"res-{tag}"]
    key.delete()
    assert (
        list(ec2.key_pairs.filter(Filters=[{"Name": "key-name", "Values": [f"res-{tag}"]}])) == []
    )

    for i in ids:
        ec2.Image(i).deregister()
    with pytest.raises(ClientError) as e:
        ec2.Image("ami-0123456789abcdef0").load()
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    left = ec2.images.filter(
        Owners=["self"], Filters=[{"Name": "name", "Values": [f"res-{tag}-*"]}]
    )
    assert list(left) == []
