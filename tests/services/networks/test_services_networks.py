"""Network rules without HTTP and without QEMU (both catalog dialects): placement of new
instances in subnets, address allocation and exhaustion, source-group resolution into host
flows, the default VPC made once under racing first uses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_fixtures import REGION, World, make_world

from kiln import errors
from kiln.catalog import Catalog
from kiln.catalog import networks as cat_net
from kiln.compute.fake import FakeDriver
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.services.instances.run_instances import RunInstancesRequest, run_instances
from kiln.services.networks import host_view, vpcs
from kiln.services.networks import security_groups as sg
from kiln.services.networks.defaults import ensure_for
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id

MIB = 1024**2


@pytest.fixture
def vms(catalog: Catalog, tmp_path: Path) -> Iterator[World]:
    runtime = InstanceRuntime(FakeDriver(), "tcg", watch_interval=3600.0)
    world = make_world(catalog, tmp_path, compute=runtime)
    yield world
    runtime.close()


def _image(world: World, tmp_path: Path) -> str:
    disk = tmp_path / "root.raw"
    disk.write_bytes(b"\x5a" * MIB)
    sid = new_id("snap")
    world.svc.stores[REGION].import_disk(raw_disk(disk), sid)
    record_snapshot(world.svc.catalog, REGION, world.owner.account_id, sid, MIB)
    return world.register(world.owner, "fake-root", snapshot_id=sid)


def test_default_vpc_is_made_once_under_racing_first_uses(world: World) -> None:
    errors_seen: list[BaseException] = []

    def first_use() -> None:
        try:
            ensure_for(world.svc, world.grantee)
        except BaseException as e:  # noqa: BLE001  # reported below
            errors_seen.append(e)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == []
    with world.svc.catalog.read() as tx:
        found = cat_net.list_vpcs(tx, world.grantee.account_id, REGION)
        assert [v.is_default for v in found] == [True]
        assert len(cat_net.list_subnets(tx, vpc_id=found[0].vpc_id)) == 3
        assert [g.group_name for g in cat_net.list_groups(tx, vpc_id=found[0].vpc_id)] == [
            "default"
        ]


def test_a_deleted_default_vpc_is_not_made_again(world: World) -> None:
    (vpc,) = vpcs.describe_vpcs(world.svc, world.owner, (), (), False)
    for s in vpcs.describe_subnets(world.svc, world.owner, (), (), False):
        vpcs.delete_subnet(world.svc, world.owner, s.subnet.subnet_id, False)
    vpcs.delete_vpc(world.svc, world.owner, vpc.vpc_id, False)
    assert vpcs.describe_vpcs(world.svc, world.owner, (), (), False) == []


def test_placement_addresses_and_source_groups(vms: World, tmp_path: Path) -> None:
    world = vms
    image = _image(world, tmp_path)
    vpc = vpcs.create_vpc(world.svc, world.owner, "10.9.0.0/16", (), False)
    small = vpcs.create_subnet(world.svc, world.owner, vpc.vpc_id, "10.9.0.0/28", None, (), False)
    sid = small.subnet.subnet_id
    assert small.available_ips == 11  # 16 - EC2's five
    web = sg.create_security_group(world.svc, world.owner, "web", "w", vpc.vpc_id, (), False)
    db = sg.create_security_group(world.svc, world.owner, "db", "d", vpc.vpc_id, (), False)
    sg.authorize_security_group_ingress(
        world.svc, world.owner, db.group_id, None,
        [sg.Permission("tcp", 5432, 5432, (sg.Peer(group_id=web.group_id),))], (), False,
    )  # fmt: skip

    def run(count: int, groups: tuple[str, ...], **kw: object) -> list[str]:
        req = RunInstancesRequest(image, count, count, subnet_id=sid,
                                  security_group_ids=groups, **kw)  # type: ignore[arg-type]  # fmt: skip
        return [v.instance.private_ip for v in run_instances(world.svc, world.owner, req).instances]

    assert run(2, (web.group_id,)) == ["10.9.0.4", "10.9.0.5"]
    assert run(1, (db.group_id,), private_ip="10.9.0.14") == ["10.9.0.14"]
    with pytest.raises(KilnError) as e:
        run(1, (db.group_id,), private_ip="10.9.0.15")  # the broadcast address
    assert e.value.code == errors.InvalidParameterValue
    with pytest.raises(KilnError) as e:
        run(1, (db.group_id,), private_ip="10.9.0.14")
    assert e.value.code == errors.InvalidIPAddressInUse
    with pytest.raises(KilnError) as e:
        run(9, (web.group_id,))  # 8 left
    assert e.value.code == errors.InsufficientInstanceCapacity
    default_vpc_group = sg.describe_security_groups(
        world.svc, world.owner, (), ("default",), (), False
    )[0].group.group_id
    with pytest.raises(KilnError) as e:
        run(1, (default_vpc_group,))  # a group of another VPC
    assert e.value.code == errors.InvalidParameter

    with world.svc.catalog.read() as tx:
        (db_inst,) = [i for i in cat_net.group_members(tx, vpc.vpc_id, db.group_id)]
        nics = {n.private_ip: n for n in host_view.running_nics_in_vpc(tx, vpc.vpc_id)}
    db_nic = nics[db_inst[1]]
    (rule,) = db_nic.ingress
    assert (rule.protocol, rule.from_port, rule.to_port) == ("tcp", 5432, 5432)
    assert rule.cidrs == ("10.9.0.4/32", "10.9.0.5/32")  # web's members
    assert [e.cidrs for e in db_nic.egress] == [("0.0.0.0/0",)]
