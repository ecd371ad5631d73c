"""Instance rules without HTTP and without QEMU: kiln.compute.fake's driver runs the "VMs"; the
catalog, the store and the volume disks (qemu-img overlays) are real."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_fixtures import REGION, World, make_world

from kiln import errors
from kiln.catalog import Catalog
from kiln.catalog import instances as cat
from kiln.compute.fake import FakeDriver
from kiln.disks import raw_disk
from kiln.errors import KilnError
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.runtime.layout import volume_path
from kiln.services.instances import instances as actions
from kiln.services.instances.describe_instances import get_console_output
from kiln.services.instances.run_instances import RunInstancesRequest, run_instances
from kiln.services.instances.states import TRANSITIONS, InstanceState, change_instance
from kiln.services.snapshots.records import record_snapshot
from kiln.types import new_id

MIB = 1024**2
WAIT_S = 60.0


@pytest.fixture
def vms(catalog: Catalog, tmp_path: Path) -> Iterator[tuple[World, FakeDriver]]:
    driver = FakeDriver()
    runtime = InstanceRuntime(driver, "tcg", watch_interval=3600.0)
    world = make_world(catalog, tmp_path, compute=runtime)
    yield world, driver
    runtime.close()


def _image(world: World, tmp_path: Path) -> str:
    disk = tmp_path / "root.raw"
    disk.write_bytes(b"\x5a" * MIB)
    sid = new_id("snap")
    world.svc.stores[REGION].import_disk(raw_disk(disk), sid)
    record_snapshot(world.svc.catalog, REGION, world.owner.account_id, sid, MIB)
    return world.register(world.owner, "fake-root", snapshot_id=sid)


def _state(world: World, iid: str) -> str:
    with world.svc.catalog.read() as tx:
        inst = cat.get_instance(tx, iid, "")
    assert inst is not None
    return inst.state


def test_run_stop_start_terminate_instances(vms: tuple[World, FakeDriver], tmp_path: Path) -> None:
    world, driver = vms
    runtime = world.svc.compute
    assert runtime is not None
    image_id = _image(world, tmp_path)
    res = run_instances(world.svc, world.owner, RunInstancesRequest(image_id, 1, 1))
    iid = res.instances[0].instance.instance_id
    vol = res.instances[0].volumes[0].volume_id
    assert runtime.wait_idle(WAIT_S)
    assert _state(world, iid) == "running" and len(driver.started) == 1
    assert volume_path(world.svc.data_dir, REGION, vol).exists()
    out = get_console_output(world.svc, world.owner, iid, False)
    assert b"fake VM" in base64.b64decode(out.output or "")

    actions.stop_instances(world.svc, world.owner, [iid], False, False, False)
    assert runtime.wait_idle(WAIT_S)
    assert _state(world, iid) == "stopped"
    actions.start_instances(world.svc, world.owner, [iid], False)
    assert runtime.wait_idle(WAIT_S)
    assert _state(world, iid) == "running" and len(driver.started) == 2

    with pytest.raises(KilnError) as e:
        run_instances(world.svc, world.stranger, RunInstancesRequest(image_id, 1, 1))
    assert e.value.code.code.startswith("InvalidAMIID")

    actions.terminate_instances(world.svc, world.owner, [iid], False)
    assert runtime.wait_idle(WAIT_S)
    assert _state(world, iid) == "terminated"
    assert not volume_path(world.svc.data_dir, REGION, vol).exists()  # DeleteOnTermination
    with pytest.raises(KilnError) as e:
        actions.start_instances(world.svc, world.owner, [iid], False)
    assert e.value.code == errors.IncorrectInstanceState


def test_change_instance_refuses_a_move_outside_the_table(catalog: Catalog) -> None:
    assert InstanceState.RUNNING not in TRANSITIONS[InstanceState.TERMINATED]
    with catalog.write() as tx, pytest.raises(ValueError):
        change_instance(
            tx, "i-0123456789abcdef0", [InstanceState.TERMINATED], InstanceState.RUNNING
        )
