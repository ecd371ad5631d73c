"""An image restored from the Recycle Bin boots, and who uses it shows: DescribeImageReferences,
LastLaunchedTime and an image usage report, with real QEMU guests (TCG) behind a live
`kiln serve` and unmodified boto3.

One server for the module (SQLite); the micro image is baked once, as in test_api_instances.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import Creds, LiveKiln
from test_api_instances import (
    REGION,
    TYPE,
    _until,
    micro_server,
    wait_ready,
    wait_state,
)

pytestmark = pytest.mark.slow


@dataclass
class World:
    kiln: LiveKiln
    owner: Creds
    grantee: Creds
    micro: str

    def ec2(self, creds: Creds | None = None) -> Any:
        return self.kiln.client(creds or self.owner, REGION)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with micro_server(tmp_path_factory.mktemp("kiln-rbin-vms"), ("owner", "grantee"), REGION) as (
        kiln,
        accounts,
        micro,
    ):
        yield World(kiln, accounts[0], accounts[1], micro)


def _launch(ec2: Any, image_id: str) -> str:
    r = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
    return str(r["Instances"][0]["InstanceId"])


def test_restored_image_boots_and_its_users_show(world: World) -> None:
    ec2 = world.ec2()
    world.kiln.client(world.owner, REGION, service="rbin").create_rule(
        ResourceType="EC2_IMAGE",
        RetentionPeriod={"RetentionPeriodValue": 1, "RetentionPeriodUnit": "DAYS"},
    )
    mine = ec2.copy_image(SourceImageId=world.micro, SourceRegion=REGION, Name="my-micro")[
        "ImageId"
    ]
    _until(
        "the copy",
        lambda: ec2.describe_images(ImageIds=[mine])["Images"][0]["State"] == "available",
    )
    snap = ec2.describe_images(ImageIds=[mine])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    ec2.deregister_image(ImageId=mine)
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [mine]
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed"
    ec2.restore_image_from_recycle_bin(ImageId=mine)
    restored = ec2.describe_images(ImageIds=[mine])["Images"][0]
    assert restored["State"] == "available" and "LastLaunchedTime" not in restored
    assert restored["SourceImageId"] == world.micro and restored["SourceImageRegion"] == REGION

    iid = _launch(ec2, mine)
    wait_state(ec2, iid, "running")
    wait_ready(ec2, iid)  # the restored image's guest booted to its readiness line
    assert ec2.describe_images(ImageIds=[mine])["Images"][0]["LastLaunchedTime"]

    refs = ec2.describe_image_references(ImageIds=[mine], IncludeAllResourceTypes=True)
    assert refs["ImageReferences"] == [
        {
            "ImageId": mine,
            "ResourceType": "ec2:Instance",
            "Arn": f"arn:aws:ec2:{REGION}:{world.owner.account_id}:instance/{iid}",
        }
    ]
    assert ec2.describe_image_references(ImageIds=[world.micro], ResourceTypes=[
        {"ResourceType": "ec2:Instance"}
    ])["ImageReferences"] == []  # fmt: skip
    chain = ec2.get_image_ancestry(ImageId=mine)["ImageAncestryEntries"]
    assert [e["ImageId"] for e in chain] == [mine, world.micro]
    assert chain[1]["ImageOwnerAlias"] == "kiln"

    ec2.modify_image_attribute(
        ImageId=mine, LaunchPermission={"Add": [{"UserId": world.grantee.account_id}]}
    )
    theirs = world.ec2(world.grantee)
    other_iid = _launch(theirs, mine)
    report_id = ec2.create_image_usage_report(
        ImageId=mine,
        ResourceTypes=[{"ResourceType": "ec2:Instance"}],
        TagSpecifications=[
            {"ResourceType": "image-usage-report", "Tags": [{"Key": "k", "Value": "v"}]}
        ],
    )["ReportId"]
    report = ec2.describe_image_usage_reports(ReportIds=[report_id])["ImageUsageReports"][0]
    assert report["ImageId"] == mine and report["State"] == "available"
    assert report["Tags"] == [{"Key": "k", "Value": "v"}]
    entries = ec2.describe_image_usage_report_entries(ReportIds=[report_id])[
        "ImageUsageReportEntries"
    ]
    assert [(e["AccountId"], e["UsageCount"], e["ResourceType"]) for e in entries] == [
        (world.grantee.account_id, 1, "ec2:Instance")
    ]
    ec2.delete_image_usage_report(ReportId=report_id)
    assert ec2.describe_image_usage_reports()["ImageUsageReports"] == []
    theirs.terminate_instances(InstanceIds=[other_iid])
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(theirs, other_iid, "terminated")
    wait_state(ec2, iid, "terminated")
