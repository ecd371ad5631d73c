"""Paravirtual images (docs/instances.md#paravirtual): an AMI with a KernelId boots that AKI's
kernel with QEMU directly, through a live `kiln serve` with unmodified boto3 and a real VM under
TCG. The AKI is a kernel bundle holding the micro kernel's bzImage; the AMI is the micro image's
root snapshot with KernelId set to it."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_live import LiveKiln
from botocore.exceptions import ClientError

from kiln.bake import small_kernel

pytestmark = pytest.mark.slow

REGION = "us-east-1"
WAIT = 300.0  # guards against hanging forever; never a speed requirement
CMDLINE = "root=/dev/vda2 rw rootwait console=ttyS0,115200 nokaslr 8250.nr_uarts=1"


def _until(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def _instance(ec2: Any, iid: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def _state(ec2: Any, iid: str, state: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        inst = _instance(ec2, iid)
        name = inst["State"]["Name"]
        assert not (name == "terminated" and state != "terminated"), inst.get("StateReason")
        return inst if name == state else None

    return _until(f"{iid} {state}", probe)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def kiln(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKiln]:
    if small_kernel.cached() is None:
        pytest.skip("the micro kernel is not built on this host (kiln bake kernel)")
    data_dir = tmp_path_factory.mktemp("kiln-pv")
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"  # KVM hangs on these hosts (the probe would say so too)
    live = LiveKiln(data_dir, None)
    try:
        baked = live.kiln("bake", "micro", "--data-dir", str(data_dir), "--json")
        assert baked.returncode == 0, baked.stderr
        live.start()
        yield live
    finally:
        live.stop()
        live.kill_vms()
        live.release_networks()
        if saved is None:
            os.environ.pop("KILN_ACCEL", None)
        else:
            os.environ["KILN_ACCEL"] = saved


def test_an_ami_with_a_kernel_id_boots_its_aki_directly(kiln: LiveKiln) -> None:
    kernel = small_kernel.cached()
    assert kernel is not None
    owner = kiln.account("owner")
    ec2 = kiln.client(owner)
    micro = ec2.describe_images(Owners=["kiln"])["Images"][0]
    # micro's root disk, as the owner's own snapshot (the same chunks in the store)
    disk = kiln.data_dir / "micro.raw"
    exported = kiln.kiln(
        "snapshot",
        "export",
        micro["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
        str(disk),
        "--region",
        REGION,
        "--data-dir",
        str(kiln.data_dir),
    )
    assert exported.returncode == 0, exported.stderr
    root_snapshot = kiln.snapshot(owner, disk)

    # the AKI: a kernel bundle whose disk is the bzImage, with the command line it boots with
    kernel_snapshot = kiln.snapshot(owner, kernel.bzimage)
    bundle = kiln.data_dir / "regions" / REGION / "bundles" / "kernels" / "micro.manifest.json"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_text(
        json.dumps(
            {
                "format": "kiln-bundle/1",
                "image_type": "kernel",
                "architecture": "x86_64",
                "image": {"snapshot_id": kernel_snapshot},
                "cmdline": CMDLINE,
            }
        )
    )
    aki = ec2.register_image(
        Name=f"micro-kernel-{secrets.token_hex(4)}",
        ImageLocation="kernels/micro.manifest.json",
        VirtualizationType="paravirtual",
    )["ImageId"]
    assert aki.startswith("aki-")
    assert ec2.describe_images(ImageIds=[aki])["Images"][0]["ImageType"] == "kernel"

    # the AMI: micro's root disk, booted by that kernel
    ami = ec2.register_image(
        Name=f"micro-pv-{secrets.token_hex(4)}",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root_snapshot}}],
        VirtualizationType="paravirtual",
        KernelId=aki,
    )["ImageId"]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["KernelId"] == aki

    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t2.micro")[
        "Instances"
    ][0]["InstanceId"]
    inst = _state(ec2, iid, "running")
    assert inst["KernelId"] == aki and "RamdiskId" not in inst
    assert inst["VirtualizationType"] == "paravirtual"
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="kernel")
    assert attr["KernelId"] == {"Value": aki}

    def ready() -> str | None:
        out = ec2.get_console_output(InstanceId=iid).get("Output") or ""
        return out if f"KILN-READY instance-id={iid}" in out else None

    console = _until(f"{iid} KILN-READY", ready)
    assert "SeaBIOS" not in console and "SYSLINUX" not in console  # no firmware, no bootloader

    # QEMU booted the AKI's file itself: decompressed once to its PVH ELF (nokaslr)
    vm = json.loads(
        (kiln.data_dir / "regions" / REGION / "instances" / iid / "vm.json").read_text()
    )
    argv = vm["argv"]
    assert vm["boot"] == "direct" and "-initrd" not in argv
    booted = Path(argv[argv.index("-kernel") + 1])
    assert booted.parent.name == "bases" and booted.name == f"{kernel_snapshot}.image.pvh"
    assert booted.read_bytes()[:4] == b"\x7fELF"
    assert argv[argv.index("-append") + 1] == CMDLINE

    ec2.terminate_instances(InstanceIds=[iid])
    _state(ec2, iid, "terminated")

    # a kernel image that is gone: the launch is refused and nothing is made
    ec2.deregister_image(ImageId=aki)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t2.micro")
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.Unavailable"
    assert aki in e.value.response["Error"]["Message"]
    running = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    assert running == []
