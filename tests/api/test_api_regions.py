"""Regions, zones, account attributes and instance types over HTTP with unmodified boto3 and
the AWS CLI, against a live `kiln serve`: clients in any region botocore knows work; a server
restricted with --regions answers OptInRequired for the others; the operator's test/test keys
sign requests; ami-1234abcd is well-formed and not found; an Arm type on an x86_64 image is
EC2's refusal."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from api_live import Creds, LiveKiln, make_disk
from botocore.exceptions import ClientError

from kiln.aws.regions import known_regions
from kiln.services.instances.instance_types import catalog

if TYPE_CHECKING:
    from api_live import ApiWorld


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def cli_json(res: Any) -> Any:
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_clients_in_us_west_2_and_ap_south_1_work(api: ApiWorld) -> None:
    name = f"k-{secrets.token_hex(4)}"
    for region in ("us-west-2", "ap-south-1"):
        ec2 = api.kiln.client(api.owner, region=region)
        made = ec2.create_key_pair(KeyName=name)
        assert made["KeyName"] == name and "BEGIN" in made["KeyMaterial"]
        pairs = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
        assert [p["KeyPairId"] for p in pairs] == [made["KeyPairId"]]
        assert ec2.describe_images(Owners=["self"])["Images"] == []
        (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        zones = {s["AvailabilityZone"]: s["AvailabilityZoneId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}  # fmt: skip
        code_ = {"us-west-2": "usw2", "ap-south-1": "aps1"}[region]
        assert zones == {f"{region}{c}": f"{code_}-az{n}" for n, c in enumerate("abc", 1)}
    # regions are separate: the key pair of us-west-2 is another one than ap-south-1's
    west = api.kiln.client(api.owner, region="us-west-2").describe_key_pairs(KeyNames=[name])
    south = api.kiln.client(api.owner, region="ap-south-1").describe_key_pairs(KeyNames=[name])
    assert west["KeyPairs"][0]["KeyPairId"] != south["KeyPairs"][0]["KeyPairId"]
    doc = cli_json(api.kiln.aws(api.owner, "describe-key-pairs", region="ap-south-1"))
    assert name in [p["KeyName"] for p in doc["KeyPairs"]]
    doc = cli_json(
        api.kiln.aws(api.owner, "describe-images", "--owners", "self", region="us-west-2")
    )
    assert doc["Images"] == []


def test_describe_regions_and_availability_zones_with_filters(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner, region="us-west-2")
    regions = ec2.describe_regions()["Regions"]
    assert len(regions) == len(known_regions()) >= 40
    by_name = {r["RegionName"]: r for r in regions}
    assert by_name["ap-south-1"]["Endpoint"] == "ec2.ap-south-1.amazonaws.com"
    assert by_name["us-west-2"]["OptInStatus"] == "opt-in-not-required"
    assert by_name["af-south-1"]["OptInStatus"] == "opted-in"
    eu = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["eu-west-*"]}])
    assert sorted(r["RegionName"] for r in eu["Regions"]) == ["eu-west-1", "eu-west-2", "eu-west-3"]
    one = ec2.describe_regions(RegionNames=["ap-south-1"], AllRegions=True)["Regions"]
    assert [r["RegionName"] for r in one] == ["ap-south-1"]
    with pytest.raises(ClientError) as e:
        ec2.describe_regions(RegionNames=["mars-north-1"])
    assert code(e) == "InvalidParameterValue"
    assert "Invalid region: [mars-north-1]" in str(e.value)

    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["State"], z["RegionName"]) for z in zones] == [
        ("us-west-2a", "usw2-az1", "available", "us-west-2"),
        ("us-west-2b", "usw2-az2", "available", "us-west-2"),
        ("us-west-2c", "usw2-az3", "available", "us-west-2"),
    ]
    got = ec2.describe_availability_zones(Filters=[{"Name": "zone-id", "Values": ["usw2-az2"]}])
    assert [z["ZoneName"] for z in got["AvailabilityZones"]] == ["us-west-2b"]
    with pytest.raises(ClientError) as e:
        ec2.describe_availability_zones(ZoneNames=["us-west-2z"])
    assert code(e) == "InvalidParameterValue"
    doc = cli_json(
        api.kiln.aws(
            api.owner,
            "describe-availability-zones",
            "--filters",
            "Name=zone-name,Values=ap-south-1c",
            "Name=state,Values=available",
            region="ap-south-1",
        )
    )
    assert [(z["ZoneName"], z["ZoneId"]) for z in doc["AvailabilityZones"]] == [
        ("ap-south-1c", "aps1-az3")
    ]
    doc = cli_json(
        api.kiln.aws(
            api.owner, "describe-regions", "--filters", "Name=opt-in-status,Values=opted-in"
        )
    )
    assert "af-south-1" in [r["RegionName"] for r in doc["Regions"]]
    assert "us-east-1" not in [r["RegionName"] for r in doc["Regions"]]


def test_account_attributes_name_the_default_vpc(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.grantee, region="ap-south-1")
    attrs = {
        a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
        for a in ec2.describe_account_attributes()["AccountAttributes"]
    }
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert attrs["default-vpc"] == [vpc["VpcId"]]
    assert attrs["supported-platforms"] == ["VPC"]
    assert set(attrs) == {
        "supported-platforms",
        "default-vpc",
        "max-instances",
        "vpc-max-security-groups-per-interface",
        "max-elastic-ips",
        "vpc-max-elastic-ips",
    }
    doc = cli_json(
        api.kiln.aws(
            api.grantee,
            "describe-account-attributes",
            "--attribute-names",
            "default-vpc",
            region="ap-south-1",
        )
    )
    assert doc["AccountAttributes"] == [
        {"AttributeName": "default-vpc", "AttributeValues": [{"AttributeValue": vpc["VpcId"]}]}
    ]
    # EC2's model names only these two for AttributeNames; the others come all together
    with pytest.raises(ClientError) as e:
        ec2.describe_account_attributes(AttributeNames=["max-instances"])
    assert code(e) == "InvalidParameterValue"


def test_describe_instance_types_and_offerings(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner, region="us-west-2")
    pages = ec2.get_paginator("describe_instance_types").paginate(
        PaginationConfig={"PageSize": 100}
    )
    names = [t["InstanceType"] for page in pages for t in page["InstanceTypes"]]
    assert len(names) == len(set(names)) == len(catalog())
    (m5,) = ec2.describe_instance_types(InstanceTypes=["m5.large"])["InstanceTypes"]
    assert m5["VCpuInfo"]["DefaultVCpus"] == 2 and m5["MemoryInfo"]["SizeInMiB"] == 8192
    assert m5["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    arm = ec2.describe_instance_types(
        Filters=[
            {"Name": "instance-type", "Values": ["m*g.*"]},
            {"Name": "vcpu-info.default-vcpus", "Values": ["2"]},
            {"Name": "processor-info.supported-architecture", "Values": ["arm64"]},
        ]
    )["InstanceTypes"]
    assert "m6g.large" in [t["InstanceType"] for t in arm]
    assert all(t["ProcessorInfo"]["SupportedArchitectures"] == ["arm64"] for t in arm)
    gpus = ec2.describe_instance_types(InstanceTypes=["p4d.24xlarge"])["InstanceTypes"][0]
    assert gpus["GpuInfo"]["Gpus"][0]["Count"] == 8
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_types(InstanceTypes=["m5.huge"])  # not in EC2's enum
    assert code(e) == "InvalidParameterValue"
    doc = cli_json(
        api.kiln.aws(
            api.owner,
            "describe-instance-types",
            "--filters",
            "Name=burstable-performance-supported,Values=true",
            "Name=memory-info.size-in-mib,Values=512",
            region="ap-south-1",
        )
    )
    small = sorted(t["InstanceType"] for t in doc["InstanceTypes"])
    assert {"t3.nano", "t2.nano"} <= set(small)
    offers = ec2.describe_instance_type_offerings(
        LocationType="availability-zone-id",
        Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}],
    )["InstanceTypeOfferings"]
    assert [o["Location"] for o in offers] == ["usw2-az1", "usw2-az2", "usw2-az3"]
    doc = cli_json(
        api.kiln.aws(
            api.owner,
            "describe-instance-type-offerings",
            "--filters",
            "Name=instance-type,Values=c7g.xlarge",
            region="ap-south-1",
        )
    )
    assert doc["InstanceTypeOfferings"] == [
        {"InstanceType": "c7g.xlarge", "LocationType": "region", "Location": "ap-south-1"}
    ]


def test_zones_of_the_region_are_taken_and_others_refused(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner, region="us-west-2")
    vol = ec2.create_volume(AvailabilityZone="us-west-2b", Size=1)
    assert vol["AvailabilityZone"] == "us-west-2b"
    with pytest.raises(ClientError) as e:
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
    assert code(e) == "InvalidZone.NotFound"
    assert "The zone 'us-east-1a' does not exist." in str(e.value)
    vpc = ec2.create_vpc(CidrBlock="10.44.0.0/16")["Vpc"]
    sub = ec2.create_subnet(
        VpcId=vpc["VpcId"], CidrBlock="10.44.1.0/24", AvailabilityZone="us-west-2c"
    )
    assert sub["Subnet"]["AvailabilityZoneId"] == "usw2-az3"
    ec2.delete_subnet(SubnetId=sub["Subnet"]["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    ec2.delete_volume(VolumeId=vol["VolumeId"])


def test_short_ids_are_not_found_and_an_arm_type_on_an_x86_image_is_refused(
    api: ApiWorld,
) -> None:
    ec2 = api.kiln.client(api.owner)
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=["ami-1234abcd"])
    assert code(e) == "InvalidAMIID.NotFound"
    assert e.value.response["Error"]["Message"] == "The image id '[ami-1234abcd]' does not exist"
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=["ami-1234abcd", "ami-0123456789abcdef0"])
    assert e.value.response["Error"]["Message"] == (
        "The image ids '[ami-1234abcd, ami-0123456789abcdef0]' do not exist"
    )
    res = api.kiln.aws(api.owner, "describe-images", "--image-ids", "ami-1234abcd")
    assert res.returncode != 0 and "InvalidAMIID.NotFound" in res.stderr
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="ami-1234abcd", MinCount=1, MaxCount=1)
    assert code(e) == "InvalidAMIID.NotFound"
    snap = api.kiln.snapshot(api.owner, api.disk)
    image_id = ec2.register_image(
        Name=f"x86-{secrets.token_hex(4)}",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
    )["ImageId"]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m7g.large")
    assert code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"].startswith(
        "The architecture 'arm64' of the specified instance type does not match the "
        "architecture 'x86_64' of the specified AMI."
    )
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m5.enormous")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.run_instances(
            ImageId=image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="m5.large",
            Placement={"AvailabilityZone": "us-east-1z"},
        )
    assert code(e) == "InvalidParameterValue"
    assert "Invalid availability zone: [us-east-1z]" in str(e.value)
    res = api.kiln.aws(
        api.owner,
        "run-instances",
        "--image-id",
        image_id,
        "--instance-type",
        "c6g.medium",
        "--count",
        "1",
    )
    assert res.returncode != 0 and "architecture 'arm64'" in res.stderr
    assert (
        ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image_id]}])["Reservations"]
        == []
    )


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveKiln, Creds]]:
    """A server of two regions whose operator gave an account the keys test/test."""
    data_dir = tmp_path_factory.mktemp("kiln-regions")
    kiln = LiveKiln(data_dir, None, serve_args=("--regions", "us-east-1,ap-south-1"))
    kiln.start()
    try:
        creds = kiln.account("suite", "--access-key-id", "test", "--secret-access-key", "test")
        assert (creds.access_key_id, creds.secret_access_key) == ("test", "test")
        yield kiln, creds
    finally:
        kiln.stop()


def test_test_keys_sign_and_unserved_regions_are_opt_in_required(
    restricted: tuple[LiveKiln, Creds], tmp_path: Path
) -> None:
    kiln, creds = restricted
    ec2 = kiln.client(creds, region="ap-south-1")
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [r["RegionName"] for r in ec2.describe_regions()["Regions"]] == [
        "ap-south-1",
        "us-east-1",
    ]
    every = {
        r["RegionName"]: r["OptInStatus"] for r in ec2.describe_regions(AllRegions=True)["Regions"]
    }
    assert every["us-west-2"] == "not-opted-in" and every["us-east-1"] == "opt-in-not-required"
    with pytest.raises(ClientError) as e:
        kiln.client(creds, region="us-west-2").describe_images()
    assert code(e) == "OptInRequired" and "us-west-2" in str(e.value)
    with pytest.raises(ClientError) as e:
        kiln.client(creds, region="mars-north-1").describe_images()
    assert code(e) == "AuthFailure"
    wrong = Creds(creds.account_id, "test", "nottest")
    with pytest.raises(ClientError) as e:
        kiln.client(wrong, region="us-east-1").describe_images()
    assert code(e) == "AuthFailure"
    doc = cli_json(kiln.aws(creds, "describe-availability-zones", region="ap-south-1"))
    assert [z["ZoneName"] for z in doc["AvailabilityZones"]] == [
        "ap-south-1a",
        "ap-south-1b",
        "ap-south-1c",
    ]
    ident = kiln.client(creds, region="us-east-1", service="sts").get_caller_identity()
    assert ident["Account"] == creds.account_id
    res = kiln.aws(creds, "describe-regions", region="us-west-2")
    assert res.returncode != 0 and "OptInRequired" in res.stderr
    # a served region's store is made when first used, not before
    assert not (kiln.data_dir / "regions" / "us-east-1" / "store").exists()
    assert not (kiln.data_dir / "regions" / "ap-south-1" / "store").exists()
    snap = kiln.snapshot(creds, make_disk(tmp_path / "d.raw"), region="ap-south-1")
    assert (kiln.data_dir / "regions" / "ap-south-1" / "store").is_dir()
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["SnapshotId"] == snap
