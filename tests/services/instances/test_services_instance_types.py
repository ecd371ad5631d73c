"""The instance type catalog and its rules without HTTP: every type botocore names has its
published specs; DescribeInstanceTypes' filters and pages; a launch gets its type's size capped
to the host's and the operator's limits; an Arm type on an x86_64 image is EC2's refusal."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest
from services_fixtures import REGION, World, make_world

from kiln import errors
from kiln.catalog import Catalog
from kiln.catalog import instances as cat
from kiln.catalog.records import Filter
from kiln.compute.fake import FakeDriver
from kiln.disks import raw_disk
from kiln.ec2.instance_types import instance_type_out
from kiln.ec2.protocol import render_result
from kiln.errors import KilnError
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.services.instances.describe_instance_types import (
    describe_instance_type_offerings,
    describe_instance_types,
)
from kiln.services.instances.instance_types import InstanceCaps, catalog, instance_type
from kiln.services.instances.run_instances import RunInstancesRequest, run_instances
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id

MIB = 1024**2


def test_the_catalog_has_every_type_botocore_names_with_its_specs() -> None:
    enum = botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum
    types = catalog()
    assert sorted(types) == sorted(enum)
    m5 = instance_type("m5.large")
    assert (m5.vcpus, m5.memory_mib, m5.architectures) == (2, 8192, ("x86_64",))
    assert instance_type("t3.micro").burstable and not m5.burstable
    g = instance_type("m6g.metal")
    assert g.bare_metal and g.architectures == ("arm64",) and g.vcpus == 64
    assert instance_type("p4d.24xlarge").gpus == 8
    assert instance_type("p3.2xlarge").gpus == 1  # a retired type, from the hand-typed table
    assert instance_type("m1.small").architectures == ("i386", "x86_64")
    assert instance_type(None).name == "m1.small"
    with pytest.raises(KilnError) as e:
        instance_type("m5.huge")
    assert e.value.code == errors.InvalidParameterValue
    assert e.value.message == "Invalid value 'm5.huge' for InstanceType."


def test_every_type_renders_as_ec2s_xml() -> None:
    """Each catalog line holds only members of botocore's InstanceTypeInfo."""
    body = render_result(
        "DescribeInstanceTypes",
        {"InstanceTypes": [instance_type_out(t) for t in catalog().values()]},
        "r-1",
    )
    assert body.count(b"<instanceType>") >= len(catalog())


def test_describe_instance_types_filters_and_pages(world: World) -> None:
    def names(*filters: Filter, types: tuple[str, ...] = ()) -> list[str]:
        page = describe_instance_types(world.svc, world.owner, types, filters, 100)
        out = [t.name for t in page.types]
        while page.next_token:
            page = describe_instance_types(
                world.svc, world.owner, types, filters, 100, page.next_token
            )
            out += [t.name for t in page.types]
        return out

    assert sorted(names(Filter("instance-type", ("m5.*large",)))) == sorted(
        n for n in catalog() if n.startswith("m5.") and n.endswith("large")
    )
    two = names(
        Filter("vcpu-info.default-vcpus", ("2",)),
        Filter("memory-info.size-in-mib", ("8192",)),
        Filter("processor-info.supported-architecture", ("arm64",)),
    )
    assert "m6g.large" in two and "m5.large" not in two
    assert all(instance_type(n).architectures == ("arm64",) for n in two)
    burst = names(Filter("burstable-performance-supported", ("true",)))
    assert burst and all(n.startswith("t") for n in burst)
    metal = names(Filter("bare-metal", ("true",)), Filter("current-generation", ("true",)))
    assert (
        "c6i.metal" in metal
        and "m5.metal" not in metal
        and all(instance_type(n).bare_metal for n in metal)
    )
    assert sorted(names(types=("t3.micro", "m5.large"))) == ["m5.large", "t3.micro"]
    everything = names()
    assert len(everything) == len(catalog()) == len(set(everything))
    first = describe_instance_types(world.svc, world.owner, max_results=5)
    assert len(first.types) == 5 and first.next_token
    with pytest.raises(KilnError) as e:  # a token of another query
        describe_instance_types(world.svc, world.owner, max_results=6, next_token=first.next_token)
    assert e.value.code == errors.InvalidPaginationToken
    with pytest.raises(KilnError) as e:
        describe_instance_types(world.svc, world.owner, ("m5.large", "x9.nope"))
    assert e.value.code == errors.InvalidInstanceType
    assert "[x9.nope]" in e.value.message
    with pytest.raises(KilnError) as e:
        describe_instance_types(world.svc, world.owner, filters=(Filter("size", ("2",)),))
    assert e.value.code == errors.InvalidFilter


def test_describe_instance_type_offerings_by_region_zone_and_zone_id(world: World) -> None:
    def offers(kind: str | None, *filters: Filter) -> list[tuple[str, str]]:
        page = describe_instance_type_offerings(world.svc, world.owner, kind, filters)
        assert page.next_token is None
        return [(o.instance_type, o.location) for o in page.offerings]

    m5 = Filter("instance-type", ("m5.large",))
    assert offers(None, m5) == [("m5.large", REGION)]
    assert offers("availability-zone", m5) == [
        ("m5.large", f"{REGION}a"),
        ("m5.large", f"{REGION}b"),
        ("m5.large", f"{REGION}c"),
    ]
    assert offers("availability-zone-id", m5, Filter("location", ("use1-az2",))) == [
        ("m5.large", "use1-az2")
    ]
    page = describe_instance_type_offerings(world.svc, world.owner, "region", max_results=1000)
    assert len(page.offerings) == 1000 and page.next_token
    with pytest.raises(KilnError) as e:
        describe_instance_type_offerings(world.svc, world.owner, "outpost")
    assert e.value.code == errors.InvalidParameterValue


@pytest.fixture
def vms(catalog: Catalog, tmp_path: Path) -> Iterator[tuple[World, FakeDriver]]:
    driver = FakeDriver()
    runtime = InstanceRuntime(driver, "tcg", watch_interval=3600.0)
    world = make_world(catalog, tmp_path, compute=runtime)
    capped = dataclasses.replace(world.svc, instance_caps=InstanceCaps(vcpus=2, memory_mib=768))
    yield dataclasses.replace(world, svc=capped), driver
    runtime.close()


def _image(world: World, tmp_path: Path, **kw: object) -> str:
    disk = tmp_path / "root.raw"
    disk.write_bytes(b"\x5a" * MIB)
    sid = new_id("snap")
    world.svc.stores[REGION].import_disk(raw_disk(disk), sid)
    record_snapshot(world.svc.catalog, REGION, world.owner.account_id, sid, MIB)
    return world.register(world.owner, f"root-{sid}", snapshot_id=sid, **kw)


def test_a_large_type_launches_capped_and_reports_its_own_size(
    vms: tuple[World, FakeDriver], tmp_path: Path
) -> None:
    world, driver = vms
    assert world.svc.compute is not None
    image_id = _image(world, tmp_path)
    res = run_instances(
        world.svc,
        world.owner,
        RunInstancesRequest(image_id, 1, 1, instance_type="m5.24xlarge"),
    )
    iid = res.instances[0].instance.instance_id
    assert world.svc.compute.wait_idle(60.0)
    with world.svc.catalog.read() as tx:
        inst = cat.get_instance(tx, iid, "")
    assert inst is not None and inst.state == "running"
    assert (inst.instance_type, inst.vcpus, inst.memory_mib) == ("m5.24xlarge", 96, 393216)
    spec = driver.started[-1]
    assert (spec.vcpus, spec.memory_mib) == (2, 768)
    small = run_instances(
        world.svc, world.owner, RunInstancesRequest(image_id, 1, 1, instance_type="t3.nano")
    )
    assert world.svc.compute.wait_idle(60.0)
    assert small.instances[0].instance.instance_type == "t3.nano"
    assert (driver.started[-1].vcpus, driver.started[-1].memory_mib) == (2, 512)


def test_an_arm_type_on_an_x86_image_is_refused_as_ec2_does(
    vms: tuple[World, FakeDriver], tmp_path: Path
) -> None:
    world, _ = vms
    x86 = _image(world, tmp_path, architecture="x86_64")
    with pytest.raises(KilnError) as e:
        run_instances(
            world.svc, world.owner, RunInstancesRequest(x86, 1, 1, instance_type="m6g.large")
        )
    assert e.value.code == errors.InvalidParameterValue
    assert e.value.message.startswith(
        "The architecture 'arm64' of the specified instance type does not match the "
        "architecture 'x86_64' of the specified AMI. Specify an instance type and an AMI that "
        "have matching architectures, and try again."
    )
    arm = _image(world, tmp_path, architecture="arm64")
    with pytest.raises(KilnError) as e:
        run_instances(world.svc, world.owner, RunInstancesRequest(arm, 1, 1))
    assert "'x86_64,i386' of the specified instance type" in e.value.message
    with pytest.raises(KilnError) as e:  # the types agree; Kiln's hosts run no Arm guests
        run_instances(
            world.svc, world.owner, RunInstancesRequest(arm, 1, 1, instance_type="m6g.large")
        )
    assert e.value.code == errors.UnsupportedOperation
    with pytest.raises(KilnError) as e:
        run_instances(world.svc, world.owner, RunInstancesRequest(x86, 1, 1, instance_type="z9"))
    assert e.value.code == errors.InvalidParameterValue
