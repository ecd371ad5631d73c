"""Instances with real VMs: QEMU under TCG booting the baked micro image, driven through a live
`kiln serve` with unmodified boto3, SSH'd into with paramiko.

One server for the module (SQLite). The micro image is baked once (`kiln bake micro` against the
test data dir). Launches are shared between assertions where that is honest: the first instance
is inspected, imaged, stopped/started and terminated in turn; the three instances of the new
image are checked for independence and then survive a server restart.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from api_live import Creds, LiveKiln, make_disk, open_ssh, ssh_address
from botocore.exceptions import ClientError

from kiln.bake import small_kernel

pytestmark = pytest.mark.slow

REGION = "us-east-1"
WAIT = 300.0  # guards against hanging forever; never a speed requirement
TYPE = "t2.micro"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@dataclass
class VmWorld:
    kiln: LiveKiln
    owner: Creds
    grantee: Creds
    stranger: Creds
    micro: str  # the public kiln/micro image in REGION
    micro_snapshot: str
    key_name: str
    key_file: Path

    def ec2(self, creds: Creds | None = None) -> Any:
        return self.kiln.client(creds or self.owner)

    @property
    def region_dir(self) -> Path:
        return self.kiln.data_dir / "regions" / REGION


def _until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def describe(ec2: Any, iid: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def wait_state(ec2: Any, iid: str, state: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        inst = describe(ec2, iid)
        name = inst["State"]["Name"]
        assert not (name == "terminated" and state != "terminated"), inst.get("StateReason")
        return inst if name == state else None

    return _until(f"{iid} {state}", probe)


def wait_ready(ec2: Any, iid: str) -> str:
    """The console once the guest printed its readiness line (boto3 decodes the base64)."""

    def probe() -> str | None:
        out = ec2.get_console_output(InstanceId=iid).get("Output") or ""
        return out if f"KILN-READY instance-id={iid}" in out else None

    return str(_until(f"{iid} KILN-READY", probe))


def ssh(inst: dict[str, Any], key_file: Path, command: str) -> str:
    host, port = ssh_address(inst)  # docs/networks.md
    assert host == inst["PublicIpAddress"] and host.startswith("127.")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        host,
        port=port,
        username="root",
        pkey=paramiko.Ed25519Key.from_private_key_file(str(key_file)),
        look_for_keys=False,
        allow_agent=False,
        timeout=60,
        banner_timeout=60,
    )
    try:
        _, stdout, _ = client.exec_command(command, timeout=60)
        return stdout.read().decode()
    finally:
        client.close()


def _qemu_pids(data_dir: Path) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                argv = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if (
                argv.startswith(b"/")
                and b"qemu-system" in argv.split(b"\0")[0]
                and str(data_dir).encode() in argv
            ):
                pids.append(int(p.name))
    return pids


def _terminate_all(ec2: Any) -> None:
    ids = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    if not ids:
        return
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_state(ec2, iid, "terminated")


@contextmanager
def micro_server(
    data_dir: Path, names: tuple[str, ...], region: str = REGION
) -> Iterator[tuple[LiveKiln, list[Creds], str]]:
    """A live `kiln serve` under TCG with the baked micro image and one account per name:
    (the server, the accounts, the micro image id in ``region``). Afterwards every instance is
    terminated, no QEMU of the data dir is left and KILN_ACCEL is as it was, whatever failed."""
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"  # KVM hangs on these hosts (the probe would say so too)
    kiln = LiveKiln(data_dir, None)
    accounts: list[Creds] = []
    try:
        baked = kiln.kiln("bake", "micro", "--data-dir", str(data_dir), "--json")
        assert baked.returncode == 0, baked.stderr
        kiln.start()
        accounts += [kiln.account(n) for n in names]
        micro = next(r for r in json.loads(baked.stdout) if r["Region"] == region)["ImageId"]
        yield kiln, accounts, micro
    finally:
        try:
            if kiln.proc is not None and kiln.proc.poll() is None:
                for creds in accounts:
                    _terminate_all(kiln.client(creds))
        finally:
            kiln.stop()
            for pid in _qemu_pids(data_dir):  # never leave a VM behind, whatever failed
                os.kill(pid, signal.SIGKILL)
            kiln.release_networks()
            if saved is None:
                os.environ.pop("KILN_ACCEL", None)
            else:
                os.environ["KILN_ACCEL"] = saved


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmWorld]:
    data_dir = tmp_path_factory.mktemp("kiln-vms")
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"  # KVM hangs on these hosts (the probe would say so too)
    kiln = LiveKiln(data_dir, None)
    accounts: list[Creds] = []
    try:
        baked = kiln.kiln("bake", "micro", "--data-dir", str(data_dir), "--json")
        assert baked.returncode == 0, baked.stderr
        kiln.start()
        accounts += [kiln.account(n) for n in ("owner", "grantee", "stranger")]
        ec2 = kiln.client(accounts[0])
        micro = next(r for r in json.loads(baked.stdout) if r["Region"] == REGION)
        image = ec2.describe_images(ImageIds=[micro["ImageId"]])["Images"][0]
        key = ec2.create_key_pair(KeyName="vm-key", KeyType="ed25519")
        key_file = data_dir / "vm-key.pem"
        key_file.write_text(key["KeyMaterial"])
        for creds in accounts[:2]:  # the accounts that launch and SSH in
            open_ssh(kiln.client(creds))
        yield VmWorld(
            kiln,
            *accounts,
            micro["ImageId"],
            image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
            "vm-key",
            key_file,
        )
    finally:
        try:
            if kiln.proc is not None and kiln.proc.poll() is None:
                for creds in accounts:
                    _terminate_all(kiln.client(creds))
        finally:
            kiln.stop()
            for pid in _qemu_pids(data_dir):  # never leave a VM behind, whatever failed
                os.kill(pid, signal.SIGKILL)
            kiln.release_networks()
            if saved is None:
                os.environ.pop("KILN_ACCEL", None)
            else:
                os.environ["KILN_ACCEL"] = saved


@dataclass
class First:
    """The first instance: micro, the key pair, user data that writes a file."""

    iid: str
    token: str


@pytest.fixture(scope="module")
def first(world: VmWorld) -> First:
    ec2 = world.ec2()
    token = secrets.token_hex(8)
    user_data = f"#!/bin/sh\necho {token} > /root/from-user-data.txt\n"
    r = ec2.run_instances(
        ImageId=world.micro,
        MinCount=1,
        MaxCount=1,
        InstanceType=TYPE,
        KeyName=world.key_name,
        UserData=user_data,
        SecurityGroups=["default"],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}]},
            {"ResourceType": "volume", "Tags": [{"Key": "disk", "Value": "root"}]},
        ],
    )
    inst = r["Instances"][0]
    assert (
        inst["State"] == {"Code": 0, "Name": "pending"} and r["OwnerId"] == world.owner.account_id
    )
    return First(inst["InstanceId"], token)


def test_micro_boots_runs_user_data_and_takes_the_key_over_ssh(
    world: VmWorld, first: First
) -> None:
    ec2 = world.ec2()
    inst = wait_state(ec2, first.iid, "running")
    console = wait_ready(ec2, first.iid)
    assert "kiln: user-data exit=0" in console
    assert ssh(inst, world.key_file, "cat /root/from-user-data.txt; hostname").split() == [
        first.token,
        first.iid,
    ]
    assert inst["ImageId"] == world.micro and inst["InstanceType"] == TYPE
    # the fast path (kiln/compute/direct_boot.py): the kernel syslinux.cfg names, booted by QEMU
    # itself from the base's cache, with the command line syslinux would have passed
    vm = json.loads((world.region_dir / "instances" / first.iid / "vm.json").read_text())
    argv = vm["argv"]
    assert vm["boot"] == "direct" and "-kernel" in argv
    kernel = Path(argv[argv.index("-kernel") + 1])
    assert kernel.parent.name == f"{world.micro_snapshot}.raw.boot" and kernel.read_bytes()[:4] == (
        b"\x7fELF"
    )
    cmdline = ssh(inst, world.key_file, "cat /proc/cmdline").strip()
    if small_kernel.cached() is not None:  # the micro kernel: no initramfs, the root by device
        assert cmdline.startswith("BOOT_IMAGE=/vmlinuz root=/dev/vda2 rw ")
        assert "initrd=" not in cmdline and "-initrd" not in argv
    else:  # Debian's kernel and the initramfs that finds the root by label
        assert cmdline.startswith("BOOT_IMAGE=/vmlinuz root=LABEL=kiln-root ")
        assert cmdline.endswith(" initrd=/initrd.img")
    assert inst["KeyName"] == world.key_name and inst["RootDeviceType"] == "ebs"
    assert inst["Tags"] == [{"Key": "Name", "Value": "web-1"}]
    root = inst["BlockDeviceMappings"][0]
    assert root["DeviceName"] == inst["RootDeviceName"] == "/dev/xvda"
    vol = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert vol["State"] == "in-use" and vol["Attachments"][0]["InstanceId"] == first.iid
    assert (
        vol["Tags"] == [{"Key": "disk", "Value": "root"}]
        and vol["SnapshotId"] == world.micro_snapshot
    )
    for filters in (
        [{"Name": "tag:Name", "Values": ["web-*"]}],
        [
            {"Name": "instance-state-name", "Values": ["running"]},
            {"Name": "image-id", "Values": [world.micro]},
        ],
        [{"Name": "instance-id", "Values": [first.iid]}],
    ):
        found = [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=filters)["Reservations"]
            for i in r["Instances"]
        ]
        assert first.iid in found, filters
    assert not ec2.describe_instances(
        Filters=[
            {"Name": "instance-state-name", "Values": ["stopped"]},
            {"Name": "instance-id", "Values": [first.iid]},
        ]
    )["Reservations"]
    ec2.create_tags(Resources=[first.iid], Tags=[{"Key": "role", "Value": "web"}])
    assert [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["web"]}])[
            "Reservations"
        ]
        for i in r["Instances"]
    ] == [first.iid]
    ec2.delete_tags(Resources=[first.iid], Tags=[{"Key": "role"}])
    status = ec2.describe_instance_status(InstanceIds=[first.iid])["InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "ok" and status["SystemStatus"]["Status"] == "ok"
    assert ec2.describe_instance_attribute(InstanceId=first.iid, Attribute="userData")["UserData"][
        "Value"
    ]  # base64 of what was sent


@dataclass
class Imaged:
    image_id: str
    marker: str


@pytest.fixture(scope="module")
def imaged(world: VmWorld, first: First) -> Imaged:
    ec2 = world.ec2()
    inst = wait_state(ec2, first.iid, "running")
    wait_ready(ec2, first.iid)
    marker = secrets.token_hex(8)
    assert (
        ssh(
            inst,
            world.key_file,
            f"echo {marker} > /root/marker.txt && sync && cat /root/marker.txt",
        ).strip()
        == marker
    )
    image_id = ec2.create_image(
        InstanceId=first.iid, Name=f"web-{marker}", Description="web server"
    )["ImageId"]
    _until(
        "image available",
        lambda: ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available",
    )
    return Imaged(image_id, marker)


def test_create_image_stores_a_child_snapshot_and_restarts_the_instance(
    world: VmWorld, first: First, imaged: Imaged
) -> None:
    ec2 = world.ec2()
    image = ec2.describe_images(ImageIds=[imaged.image_id])["Images"][0]
    assert image["SourceInstanceId"] == first.iid and image["SourceImageId"] == world.micro
    assert image["OwnerId"] == world.owner.account_id and image["RootDeviceName"] == "/dev/xvda"
    snap_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    assert snap["State"] == "completed" and first.iid in snap["Description"]
    # In the store, the new snapshot is a child of the micro snapshot (changed ranges only).
    ls = world.kiln.kiln(
        "snapshot", "ls", "--region", REGION, "--data-dir", str(world.kiln.data_dir), "--json"
    )
    rows = {r["SnapshotId"]: r for r in json.loads(ls.stdout)}
    assert rows[snap_id]["Parent"] == world.micro_snapshot
    # The instance was shut down for a clean image and is running again, file intact.
    inst = wait_state(ec2, first.iid, "running")
    wait_ready(ec2, first.iid)
    assert ssh(inst, world.key_file, "cat /root/marker.txt").strip() == imaged.marker


@pytest.fixture(scope="module")
def trio(world: VmWorld, imaged: Imaged) -> list[str]:
    ec2 = world.ec2()
    r = ec2.run_instances(
        ImageId=imaged.image_id, MinCount=1, MaxCount=3, InstanceType=TYPE, KeyName=world.key_name
    )
    ids = [i["InstanceId"] for i in r["Instances"]]
    assert len(ids) == 3 and [i["AmiLaunchIndex"] for i in r["Instances"]] == [0, 1, 2]
    for iid in ids:
        wait_state(ec2, iid, "running")
    for iid in ids:
        wait_ready(ec2, iid)
    return ids


def test_max_count_three_gives_independent_machines_with_the_imaged_file(
    world: VmWorld, imaged: Imaged, trio: list[str]
) -> None:
    ec2 = world.ec2()
    insts = [describe(ec2, iid) for iid in trio]
    assert len({ssh_address(i) for i in insts}) == 3
    assert len({i["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] for i in insts}) == 3
    for inst in insts:
        assert ssh(inst, world.key_file, "cat /root/marker.txt; hostname").split() == [
            imaged.marker,
            inst["InstanceId"],
        ]
    ssh(insts[0], world.key_file, "echo only-here > /root/mine.txt; sync")
    assert (
        ssh(insts[1], world.key_file, "cat /root/mine.txt 2>/dev/null || echo absent").strip()
        == "absent"
    )
    assert ssh(insts[0], world.key_file, "cat /root/mine.txt").strip() == "only-here"


def test_stop_start_keeps_the_disk_and_type_changes_only_when_stopped(
    world: VmWorld, first: First, imaged: Imaged
) -> None:
    ec2 = world.ec2()
    wait_state(ec2, first.iid, "running")
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=first.iid, InstanceType={"Value": "t2.small"})
    assert code(e) == "IncorrectInstanceState"
    change = ec2.stop_instances(InstanceIds=[first.iid])["StoppingInstances"][0]
    assert change["PreviousState"]["Name"] == "running"
    assert change["CurrentState"]["Name"] == "stopping"
    stopped = wait_state(ec2, first.iid, "stopped")
    assert (
        "PublicIpAddress" not in stopped
        and stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    )
    ec2.modify_instance_attribute(InstanceId=first.iid, InstanceType={"Value": "t2.small"})
    started = ec2.start_instances(InstanceIds=[first.iid])["StartingInstances"][0]
    assert (started["PreviousState"]["Name"], started["CurrentState"]["Name"]) == (
        "stopped",
        "pending",
    )
    inst = wait_state(ec2, first.iid, "running")
    wait_ready(ec2, first.iid)
    assert inst["InstanceType"] == "t2.small"
    assert ssh(inst, world.key_file, "cat /root/marker.txt /root/from-user-data.txt").split() == [
        imaged.marker,
        first.token,
    ]
    mem_kib = int(ssh(inst, world.key_file, "awk '/MemTotal/ {print $2}' /proc/meminfo"))
    assert mem_kib > 1536 * 1024  # t2.small's 2 GiB, not t2.micro's 1 GiB


def test_instances_survive_a_server_restart(world: VmWorld, trio: list[str]) -> None:
    ec2 = world.ec2()
    before = {iid: ssh_address(describe(ec2, iid)) for iid in trio}
    world.kiln.stop()
    victim = trio[2]
    pid = int((world.region_dir / "instances" / victim / "qemu.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # the VM dies while Kiln is down
    _until(
        "victim gone",
        lambda: (
            not Path(f"/proc/{pid}").exists()
            or b"Z" in Path(f"/proc/{pid}/stat").read_bytes().split(b")")[1][:3]
        ),
    )
    world.kiln.start()
    ec2 = world.ec2()
    for iid in trio[:2]:
        inst = describe(ec2, iid)
        assert inst["State"]["Name"] == "running" and ssh_address(inst) == before[iid]
        assert ssh(inst, world.key_file, "hostname").strip() == iid
    dead = describe(ec2, victim)
    assert dead["State"]["Name"] == "stopped"
    assert dead["StateReason"]["Code"] == "Server.InternalError"

    # Reboot keeps the instance running and boots the guest again (uptime starts over).
    def uptime() -> float | None:
        try:
            return float(ssh(describe(ec2, trio[0]), world.key_file, "cut -d' ' -f1 /proc/uptime"))
        except (OSError, EOFError, ValueError, paramiko.SSHException):  # mid-reboot
            return None

    up = uptime()
    assert up is not None
    ec2.reboot_instances(InstanceIds=[trio[0]])
    _until("a fresh boot", lambda: (u := uptime()) is not None and u < up)
    assert describe(ec2, trio[0])["State"]["Name"] == "running"


def test_terminate_removes_the_disks(world: VmWorld, first: First, trio: list[str]) -> None:
    ec2 = world.ec2()
    ids = [first.iid, *trio]
    # A guest that powers itself off is noticed: stopped, with EC2's reason.
    ssh(describe(ec2, trio[1]), world.key_file, "poweroff")
    off = wait_state(ec2, trio[1], "stopped")
    assert off["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    vols = [describe(ec2, iid)["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] for iid in ids]
    assert all((world.region_dir / "volumes" / f"{v}.qcow2").exists() for v in vols)
    changes = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {c["CurrentState"]["Name"] for c in changes} == {"shutting-down"}
    for iid in ids:
        gone = wait_state(ec2, iid, "terminated")
        assert gone["BlockDeviceMappings"] == [] and "PublicIpAddress" not in gone
    assert not [v for v in ec2.describe_volumes()["Volumes"] if v["VolumeId"] in vols]
    assert not any((world.region_dir / "volumes" / f"{v}.qcow2").exists() for v in vols)
    assert _until(
        "QEMU gone",
        lambda: (
            not [
                p
                for p in _qemu_pids(world.kiln.data_dir)
                if any(iid.encode() in Path(f"/proc/{p}/cmdline").read_bytes() for iid in ids)
            ]
        ),
    )
    again = ec2.terminate_instances(InstanceIds=[first.iid])["TerminatingInstances"][0]
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "terminated"
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[first.iid])
    assert code(e) == "IncorrectInstanceState"


def test_shared_image_launches_for_a_granted_account_only(world: VmWorld, imaged: Imaged) -> None:
    owner, grantee, stranger = (world.ec2(c) for c in (world.owner, world.grantee, world.stranger))
    with pytest.raises(ClientError) as e:
        grantee.run_instances(ImageId=imaged.image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
    assert code(e) == "InvalidAMIID.NotFound"
    owner.modify_image_attribute(
        ImageId=imaged.image_id, LaunchPermission={"Add": [{"UserId": world.grantee.account_id}]}
    )
    r = grantee.run_instances(ImageId=imaged.image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
    iid = r["Instances"][0]["InstanceId"]
    assert r["OwnerId"] == world.grantee.account_id
    wait_state(grantee, iid, "running")
    # The launch is the grantee's: the owner does not see it.
    with pytest.raises(ClientError) as e:
        owner.describe_instances(InstanceIds=[iid])
    assert code(e) == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as e:
        stranger.run_instances(ImageId=imaged.image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
    assert code(e) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:
        stranger.terminate_instances(InstanceIds=[iid])
    assert code(e) == "InvalidInstanceID.NotFound"
    grantee.terminate_instances(InstanceIds=[iid])
    wait_state(grantee, iid, "terminated")


def test_disabled_images_refuse_launches_deprecated_ones_launch(
    world: VmWorld, imaged: Imaged
) -> None:
    owner, grantee = world.ec2(), world.ec2(world.grantee)
    owner.enable_image_deprecation(ImageId=imaged.image_id, DeprecateAt=time.time() - 120)
    assert owner.describe_images(ImageIds=[imaged.image_id])["Images"][0]["DeprecationTime"]
    r = owner.run_instances(ImageId=imaged.image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
    owner.terminate_instances(InstanceIds=[r["Instances"][0]["InstanceId"]])
    owner.disable_image(ImageId=imaged.image_id)
    try:
        with pytest.raises(ClientError) as e:
            owner.run_instances(ImageId=imaged.image_id, MinCount=1, MaxCount=1, InstanceType=TYPE)
        assert code(e) == "InvalidAMIID.Unavailable"
        with pytest.raises(ClientError) as e:
            grantee.run_instances(
                ImageId=imaged.image_id, MinCount=1, MaxCount=1, InstanceType=TYPE
            )
        assert code(e) == "InvalidAMIID.NotFound"
    finally:
        owner.enable_image(ImageId=imaged.image_id)
    wait_state(owner, r["Instances"][0]["InstanceId"], "terminated")


def test_instance_store_image_copies_its_bundle_and_refuses_stop(world: VmWorld) -> None:
    ec2 = world.ec2()
    bundles = world.region_dir / "bundles" / "my-bucket"
    bundles.mkdir(parents=True, exist_ok=True)
    (bundles / "micro.manifest.json").write_text(
        json.dumps(
            {
                "format": "kiln-bundle/1",
                "image_type": "machine",
                "architecture": "x86_64",
                "image": {"snapshot_id": world.micro_snapshot},
            }
        )
    )
    image_id = ec2.register_image(
        Name=f"store-{secrets.token_hex(4)}",
        ImageLocation="my-bucket/micro.manifest.json",
        VirtualizationType="hvm",
    )["ImageId"]
    iid = ec2.run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType=TYPE, KeyName=world.key_name
    )["Instances"][0]["InstanceId"]
    inst = wait_state(ec2, iid, "running")
    assert inst["RootDeviceType"] == "instance-store" and inst["BlockDeviceMappings"] == []
    ephemeral = world.region_dir / "instances" / iid / "root.raw"
    assert ephemeral.exists()
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert code(e) == "UnsupportedOperation"
    assert describe(ec2, iid)["State"]["Name"] == "running"
    wait_ready(ec2, iid)
    assert ssh(inst, world.key_file, "hostname").strip() == iid
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert not ephemeral.exists()


def test_bad_requests_get_ec2_errors_and_create_nothing(world: VmWorld) -> None:
    ec2 = world.ec2(world.stranger)
    ok: dict[str, Any] = {
        "ImageId": world.micro,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": TYPE,
    }
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"InstanceType": "m9.gigantic"}, "InvalidParameterValue", "m9.gigantic"),
        (
            {"InstanceType": "t4g.nano"},
            "InvalidParameterValue",
            "does not match the architecture 'x86_64' of the specified AMI",
        ),  # an Arm type on an x86_64 image
        ({"UserData": "x" * (16 * 1024 + 1)}, "InvalidParameterValue", "16384"),
        ({"ImageId": "ami-nothex"}, "InvalidAMIID.Malformed", ""),
        ({"ImageId": "ami-0123456789abcdef0"}, "InvalidAMIID.NotFound", ""),
        ({"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound", ""),
        ({"MinCount": 3, "MaxCount": 2}, "InvalidParameterValue", ""),
        ({"Placement": {"AvailabilityZone": "mars-1a"}}, "InvalidParameterValue", ""),
        (
            {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 0}}]},
            "InvalidParameterValue",
            "",
        ),
        (
            {
                "TagSpecifications": [
                    {"ResourceType": "image", "Tags": [{"Key": "a", "Value": "b"}]}
                ]
            },
            "InvalidParameterValue",
            "",
        ),
    ]
    for change, want, text in cases:
        with pytest.raises(ClientError) as e:
            ec2.run_instances(**{**ok, **change})
        assert code(e) == want, change
        assert text in e.value.response["Error"]["Message"], change
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**ok, DryRun=True)
    assert code(e) == "DryRunOperation"
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_volumes()["Volumes"] == []
    for call, want in [
        (lambda: ec2.describe_instances(InstanceIds=["i-nothex"]), "InvalidInstanceID.Malformed"),
        (
            lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"]),
            "InvalidInstanceID.NotFound",
        ),
        (
            lambda: ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"]),
            "InvalidInstanceID.NotFound",
        ),
        (lambda: ec2.stop_instances(InstanceIds=["bogus"]), "InvalidInstanceID.Malformed"),
        (
            lambda: ec2.get_console_output(InstanceId="i-0123456789abcdef0"),
            "InvalidInstanceID.NotFound",
        ),
        (
            lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"], MaxResults=5),
            "InvalidParameterCombination",
        ),
        (
            lambda: ec2.describe_instances(Filters=[{"Name": "bogus", "Values": ["x"]}]),
            "InvalidFilter",
        ),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == want


def test_describe_instances_pages_through_every_reservation(world: VmWorld) -> None:
    ec2 = world.ec2()
    everything = sorted(
        i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    )
    assert len(everything) >= 6  # the tests above launched these (some now terminated)
    seen, pages = [], 0
    for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}):
        pages += 1
        seen += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
    assert sorted(seen) == everything and pages == -(-len(everything) // 5)


def test_qemu_missing_or_failing_creates_nothing_or_ends_terminated(tmp_path: Path) -> None:
    """QEMU missing: RunInstances is refused and nothing is created. QEMU failing to start (a
    stand-in that exits 1): the launch is accepted (pending), then ends terminated with QEMU's
    error as the reason, its volume deleted and nothing left running."""
    fake = tmp_path / "fake-qemu"
    saved = os.environ.get("KILN_QEMU")
    os.environ["KILN_QEMU"] = str(fake)
    kiln = LiveKiln(tmp_path, None)
    try:
        kiln.start()
        creds = kiln.account("owner")
        ec2 = kiln.client(creds)
        snap = kiln.snapshot(creds, make_disk(tmp_path / "disk.raw"))
        image_id = ec2.register_image(
            Name="no-qemu",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )["ImageId"]
        launch = {"ImageId": image_id, "MinCount": 1, "MaxCount": 1, "InstanceType": TYPE}
        with pytest.raises(ClientError) as e:
            ec2.run_instances(**launch)
        assert code(e) == "InsufficientInstanceCapacity" and "fake-qemu" in str(e.value)
        assert ec2.describe_instances()["Reservations"] == []
        assert ec2.describe_volumes()["Volumes"] == []

        fake.write_text(
            "#!/bin/sh\necho 'qemu-system-x86_64: cannot set up guest memory' >&2\nexit 1\n"
        )
        fake.chmod(0o755)
        iid = ec2.run_instances(**launch)["Instances"][0]["InstanceId"]
        gone = wait_state(ec2, iid, "terminated")
        assert gone["StateReason"]["Code"] == "Server.InternalError"
        assert "cannot set up guest memory" in gone["StateReason"]["Message"]
        assert ec2.describe_volumes()["Volumes"] == []
        region = tmp_path / "regions" / REGION
        assert not list((region / "volumes").glob("*.qcow2"))
        assert not _qemu_pids(tmp_path)
    finally:
        kiln.stop()
        if saved is None:
            os.environ.pop("KILN_QEMU", None)
        else:
            os.environ["KILN_QEMU"] = saved


def test_a_disabled_kms_key_fails_the_launch_and_enabling_it_boots(world: VmWorld) -> None:
    """docs/kms.md#key-states: EC2's state reason for a launch under a key not Enabled."""
    ec2, kms = world.ec2(), world.kiln.client(world.owner, service="kms")
    key = kms.create_key(Description="launch test")["KeyMetadata"]
    copied = ec2.copy_image(
        SourceImageId=world.micro,
        SourceRegion=REGION,
        Name=f"micro-kms-{secrets.token_hex(3)}",
        Encrypted=True,
        KmsKeyId=key["KeyId"],
    )["ImageId"]
    image = _until(
        f"{copied} available",
        lambda: next(
            (
                i
                for i in ec2.describe_images(ImageIds=[copied])["Images"]
                if i["State"] == "available"
            ),
            None,
        ),
    )
    assert image["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    kms.disable_key(KeyId=key["KeyId"])
    iid = ec2.run_instances(ImageId=copied, MinCount=1, MaxCount=1, InstanceType=TYPE)["Instances"][
        0
    ]["InstanceId"]
    failed = wait_state(ec2, iid, "terminated")
    assert failed["StateReason"] == {
        "Code": "Client.InvalidKMSKey.InvalidState",
        "Message": "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect "
        "state",
    }
    kms.enable_key(KeyId=key["KeyId"])
    iid = ec2.run_instances(ImageId=copied, MinCount=1, MaxCount=1, InstanceType=TYPE)["Instances"][
        0
    ]["InstanceId"]
    wait_state(ec2, iid, "running")
    wait_ready(ec2, iid)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
