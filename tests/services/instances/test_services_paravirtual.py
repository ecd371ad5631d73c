"""Paravirtual images without QEMU (kiln.compute.fake): an AMI with a KernelId/RamdiskId starts
a VM on the AKI's and ARI's files and the kernel bundle's command line (docs/instances.md#paravirtual)."""

from __future__ import annotations

import json
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
from kiln.runtime.layout import boot_image_path
from kiln.services.images.images import RegisterImageRequest, deregister_image, register_image
from kiln.services.instances import instances as actions
from kiln.services.instances.run_instances import RunInstancesRequest, run_instances
from kiln.services.instances.vm_kernel import DEFAULT_CMDLINE
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


def _disk(world: World, path: Path, data: bytes) -> str:
    path.write_bytes(data)
    sid = new_id("snap")
    world.svc.stores[REGION].import_disk(raw_disk(path), sid)
    record_snapshot(world.svc.catalog, REGION, world.owner.account_id, sid, len(data))
    return sid


def _bundle(world: World, name: str, doc: dict[str, object]) -> str:
    path = world.svc.bundles_dir(REGION) / "b" / f"{name}.manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "kiln-bundle/1", **doc}))
    return f"b/{name}.manifest.json"


def _boot_image(
    world: World, tmp_path: Path, kind: str, data: bytes, **extra: object
) -> tuple[str, str]:
    sid = _disk(world, tmp_path / f"{kind}.bin", data)
    location = _bundle(world, kind, {"image_type": kind, "image": {"snapshot_id": sid}, **extra})
    image_id = register_image(
        world.svc, world.owner, RegisterImageRequest(name=f"my-{kind}", image_location=location)
    )
    return image_id, sid


def _running(world: World) -> list[str]:
    with world.svc.catalog.read() as tx:
        return cat.query_instance_ids(tx, REGION, world.owner.account_id)


def test_run_instances_boots_the_images_kernel_and_ramdisk(
    vms: tuple[World, FakeDriver], tmp_path: Path
) -> None:
    world, driver = vms
    runtime = world.svc.compute
    assert runtime is not None
    aki, kernel_snap = _boot_image(world, tmp_path, "kernel", b"not a bzImage!!!" * 64)
    ari, ramdisk_snap = _boot_image(world, tmp_path, "ramdisk", b"070701" + b"\0" * 506)
    root = _disk(world, tmp_path / "root.raw", b"\x5a" * MIB)
    ami = world.register(world.owner, "pv-image", snapshot_id=root, kernel_id=aki, ramdisk_id=ari)
    run_instances(world.svc, world.owner, RunInstancesRequest(ami, 1, 1))
    assert runtime.wait_idle(WAIT_S)
    spec = driver.started[-1]
    # not a bzImage with a PVH note: the file itself, as it is in the store
    assert spec.kernel == boot_image_path(world.svc.data_dir, REGION, kernel_snap)
    assert spec.initrd == boot_image_path(world.svc.data_dir, REGION, ramdisk_snap)
    assert spec.append == DEFAULT_CMDLINE
    assert Path(spec.kernel).read_bytes() == b"not a bzImage!!!" * 64


def test_the_kernel_bundles_cmdline_is_the_command_line(
    vms: tuple[World, FakeDriver], tmp_path: Path
) -> None:
    world, driver = vms
    runtime = world.svc.compute
    assert runtime is not None
    aki, _ = _boot_image(world, tmp_path, "kernel", b"k" * 4096, cmdline="root=/dev/vda2 quiet")
    root = _disk(world, tmp_path / "root.raw", b"\x5a" * MIB)
    ami = world.register(world.owner, "pv-image", snapshot_id=root, kernel_id=aki)
    run_instances(world.svc, world.owner, RunInstancesRequest(ami, 1, 1))
    assert runtime.wait_idle(WAIT_S)
    assert driver.started[-1].append == "root=/dev/vda2 quiet" and driver.started[-1].initrd is None

    # deregistering the AKI leaves the instance launched from it booting that kernel
    iid = _running(world)[0]
    deregister_image(world.svc, world.owner, aki)
    actions.stop_instances(world.svc, world.owner, [iid], False, False, False)
    assert runtime.wait_idle(WAIT_S)
    actions.start_instances(world.svc, world.owner, [iid], False)
    assert runtime.wait_idle(WAIT_S)
    assert len(driver.started) == 2 and driver.started[-1].kernel == driver.started[0].kernel


def test_a_bad_cmdline_or_a_kernel_that_is_gone_is_refused(
    vms: tuple[World, FakeDriver], tmp_path: Path
) -> None:
    world, driver = vms
    sid = _disk(world, tmp_path / "k.bin", b"k" * 4096)
    location = _bundle(
        world,
        "long",
        {"image_type": "kernel", "image": {"snapshot_id": sid}, "cmdline": "x" * 2048},
    )
    with pytest.raises(KilnError) as e:
        register_image(
            world.svc, world.owner, RegisterImageRequest(name="long", image_location=location)
        )
    assert e.value.code == errors.InvalidParameterValue and "cmdline" in e.value.message

    aki, _ = _boot_image(world, tmp_path, "kernel", b"k" * 4096)
    root = _disk(world, tmp_path / "root.raw", b"\x5a" * MIB)
    ami = world.register(world.owner, "pv-image", snapshot_id=root, kernel_id=aki)
    deregister_image(world.svc, world.owner, aki)
    with pytest.raises(KilnError) as e:
        run_instances(world.svc, world.owner, RunInstancesRequest(ami, 1, 1))
    assert e.value.code == errors.InvalidAMIIDUnavailable and aki in e.value.message
    assert driver.started == [] and _running(world) == []
