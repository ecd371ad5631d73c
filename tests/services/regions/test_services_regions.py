"""Region, zone and account-attribute rules without HTTP: the regions botocore knows, served or
not; zones and their ids; the zone every action checks; the account's default VPC."""

from __future__ import annotations

import pytest
from services_fixtures import REGION, World

from kiln import errors
from kiln.aws.regions import known_region_names, known_regions
from kiln.catalog import networks as cat_net
from kiln.catalog.records import Filter
from kiln.config import Settings
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.regions.account_attributes import describe_account_attributes
from kiln.services.regions.availability_zones import (
    check_zone,
    describe_availability_zones,
    region_code,
)
from kiln.services.regions.regions import describe_regions
from kiln.services.snapshots.volumes import CreateVolumeRequest, create_volume


def test_every_region_botocore_knows_for_ec2_is_served_by_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    names = Settings(data_dir=tmp_path).regions
    assert {"us-east-1", "us-west-2", "ap-south-1", "eu-west-1", "cn-north-1"} <= set(names)
    assert "us-gov-west-1" in names and len(names) == len(known_region_names()) >= 40
    by_name = {r.name: r for r in known_regions()}
    assert by_name["ap-south-1"].endpoint == "ec2.ap-south-1.amazonaws.com"
    assert by_name["cn-north-1"].endpoint == "ec2.cn-north-1.amazonaws.com.cn"
    assert not by_name["us-west-2"].opt_in_required and by_name["af-south-1"].opt_in_required


def test_describe_regions_lists_the_served_ones_and_all_with_all_regions(world: World) -> None:
    o = world.owner  # the rule tests' services serve us-east-1 and eu-west-1
    served = describe_regions(world.svc, o)
    assert [r.name for r in served] == ["eu-west-1", "us-east-1"]
    assert {r.opt_in_status for r in served} == {"opt-in-not-required"}
    every = describe_regions(world.svc, o, all_regions=True)
    assert len(every) == len(known_regions())
    status = {r.name: r.opt_in_status for r in every}
    assert status["us-west-2"] == "not-opted-in" and status["us-east-1"] == "opt-in-not-required"
    assert [r.name for r in describe_regions(world.svc, o, ["us-east-1"])] == ["us-east-1"]
    got = describe_regions(world.svc, o, filters=(Filter("region-name", ("eu-*",)),))
    assert [r.name for r in got] == ["eu-west-1"]
    got = describe_regions(
        world.svc, o, filters=(Filter("endpoint", ("ec2.us-east-1.amazonaws.com",)),)
    )
    assert [r.name for r in got] == ["us-east-1"]
    got = describe_regions(
        world.svc, o, all_regions=True, filters=(Filter("opt-in-status", ("not-opted-in",)),)
    )
    assert "us-west-2" in {r.name for r in got} and "us-east-1" not in {r.name for r in got}
    with pytest.raises(KilnError) as e:
        describe_regions(world.svc, o, ["mars-north-1"])
    assert (e.value.code, e.value.message) == (
        errors.InvalidParameterValue,
        "Invalid region: [mars-north-1]",
    )
    with pytest.raises(KilnError) as e:
        describe_regions(world.svc, o, filters=(Filter("name", ("x",)),))
    assert e.value.code == errors.InvalidFilter


def test_zones_and_their_ids(world: World) -> None:
    assert [region_code(r) for r in ("us-east-1", "ap-northeast-2", "us-gov-west-1")] == [
        "use1",
        "apne2",
        "usgw1",
    ]
    zones = describe_availability_zones(world.svc, world.owner)
    assert [(z.name, z.zone_id) for z in zones] == [
        ("us-east-1a", "use1-az1"),
        ("us-east-1b", "use1-az2"),
        ("us-east-1c", "use1-az3"),
    ]
    west = Caller(world.owner.account_id, "eu-west-1")
    assert [z.zone_id for z in describe_availability_zones(world.svc, west)] == [
        "euw1-az1",
        "euw1-az2",
        "euw1-az3",
    ]
    pick = describe_availability_zones(world.svc, world.owner, ["us-east-1b"])
    assert [z.name for z in pick] == ["us-east-1b"]
    pick = describe_availability_zones(world.svc, world.owner, zone_ids=["use1-az3"])
    assert [z.name for z in pick] == ["us-east-1c"]
    for f in (
        Filter("zone-name", ("*a",)),
        Filter("zone-id", ("use1-az1",)),
        Filter("region-name", ("us-east-1",)),
        Filter("state", ("available",)),
    ):
        found = describe_availability_zones(world.svc, world.owner, filters=(f,))
        assert "us-east-1a" in [z.name for z in found], f
    assert (
        describe_availability_zones(
            world.svc, world.owner, filters=(Filter("state", ("impaired",)),)
        )
        == []
    )
    with pytest.raises(KilnError) as e:
        describe_availability_zones(world.svc, world.owner, ["eu-west-1a"])
    assert e.value.message == "Invalid availability zone: [eu-west-1a]"


def test_a_zone_outside_the_region_is_refused_where_a_zone_is_given(world: World) -> None:
    assert check_zone(REGION, "us-east-1c") == "us-east-1c"
    with pytest.raises(KilnError) as e:
        check_zone(REGION, "us-east-1z")
    assert (e.value.code, e.value.message) == (
        errors.InvalidParameterValue,
        "Invalid availability zone: [us-east-1z]",
    )
    for zone in ("us-east-1a", "us-east-1b", "us-east-1c"):
        vol = create_volume(
            world.svc, world.owner, CreateVolumeRequest(availability_zone=zone, size=1)
        )
        assert vol.availability_zone == zone
    with pytest.raises(KilnError) as e:
        create_volume(
            world.svc, world.owner, CreateVolumeRequest(availability_zone="eu-west-1a", size=1)
        )
    assert (e.value.code, e.value.message) == (
        errors.InvalidZoneNotFound,
        "The zone 'eu-west-1a' does not exist.",
    )


def test_account_attributes_name_the_default_vpc_of_the_region(world: World) -> None:
    attrs = describe_account_attributes(world.svc, world.owner)
    with world.svc.catalog.read() as tx:
        vpc = cat_net.default_vpc(tx, world.owner.account_id, REGION)
    assert vpc is not None
    assert attrs["default-vpc"] == [vpc.vpc_id]
    assert attrs["supported-platforms"] == ["VPC"]
    assert list(attrs) == [
        "supported-platforms",
        "default-vpc",
        "max-instances",
        "vpc-max-security-groups-per-interface",
        "max-elastic-ips",
        "vpc-max-elastic-ips",
    ]
    west = describe_account_attributes(
        world.svc, Caller(world.owner.account_id, "eu-west-1"), ["default-vpc"]
    )
    assert list(west) == ["default-vpc"] and west["default-vpc"] != [vpc.vpc_id]
    with pytest.raises(KilnError) as e:
        describe_account_attributes(world.svc, world.owner, ["colour"])
    assert e.value.code == errors.InvalidParameterValue
