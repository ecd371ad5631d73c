"""Guest disks are data, not uploads; a CreateImage resumed after kill -9 restores the instance.

Real parts only: a live `kiln serve`, unmodified boto3, QEMU guests (TCG) booted from the baked
micro image, paramiko, the real qemu-img and `kiln snapshot export`.

- A guest writes a qcow2 header naming a backing file, and a LUKS header, at sector 0 of two of
  its EBS data volumes. CreateImage and CreateSnapshot store those bytes as they are (they used
  to fail with "qcow2 image has a backing file": the volume was sniffed like an upload).
- ImportSnapshot with Format=RAW imports a file that starts with a LUKS (or qcow2) header as a
  raw disk, bit-exact; without Format the file is still identified and refused.
- `kill -9` of the server while CreateImage has the guest shutting down: after the restart the
  image becomes available and the instance is `running` again, as the uninterrupted job leaves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from api_live import ApiWorld, Creds, LiveKiln, open_ssh, ssh_address
from real_luks import luks_volume
from test_api_instances import describe, wait_ready, wait_state
from test_api_snapshots_support import (
    MIB,
    export_snapshot_cli,
    same_bytes,
    wait_image,
    wait_import_snapshot,
    wait_snapshot,
    wait_volume,
)

REGION = "us-east-1"
TYPE = "t2.micro"
WAIT = 300.0  # guards against hanging forever; never a speed requirement
GIB = 1024 * MIB
HEADER = 64 * 1024  # what the guest writes at sector 0 (one qcow2 cluster)


def _until(what: str, probe: Any, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def _qemu_img(*args: str | Path) -> None:
    subprocess.run(
        ["qemu-img", *map(str, args)],
        check=True,
        capture_output=True,
        env={**os.environ, "LC_ALL": "C"},
    )


def qcow2_with_backing(tmp: Path) -> bytes:
    """A real qcow2 header whose backing file is /etc/passwd (what `inspect_disk` refuses)."""
    path = tmp / "hdr.qcow2"
    _qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", path)
    data = path.read_bytes()
    assert data.startswith(b"QFI\xfb") and b"/etc/passwd" in data[:4096]
    return data


def luks_image(tmp: Path) -> bytes:
    """A real LUKS1 volume (header, key material, 1 MiB payload; tests/real_luks.py)."""
    return luks_volume(tmp / "hdr.luks", 3 * 1024 * 1024)


def sectors(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def reference(path: Path, size: int, head: bytes) -> Path:
    """A sparse file of ``size`` bytes holding ``head`` at offset 0 and zeros after it."""
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(head)
    return path


# --- raw uploads ------------------------------------------------------------------------------
def test_import_snapshot_format_raw_takes_luks_and_qcow2_headers_as_data(
    api: ApiWorld, tmp_path: Path
) -> None:
    ec2 = api.kiln.client(api.owner)
    luks = tmp_path / "luks.raw"
    luks.write_bytes(sectors(luks_image(tmp_path)))
    qcow = tmp_path / "qcow2-header.raw"
    qcow.write_bytes(sectors(qcow2_with_backing(tmp_path)) + secrets.token_bytes(MIB))
    for disk in (luks, qcow):
        task = ec2.import_snapshot(DiskContainer={"Format": "RAW", "Url": str(disk)})
        done = wait_import_snapshot(ec2, task["ImportTaskId"])["SnapshotTaskDetail"]
        assert done["Status"] == "completed", done
        assert done["Format"] == "RAW" and done["DiskImageSize"] == disk.stat().st_size
        out = export_snapshot_cli(
            api.kiln, done["SnapshotId"], tmp_path / f"{disk.stem}.out", REGION
        )
        assert same_bytes(out, disk)
    # Without a declared format the file is still probed, and a LUKS file is still refused.
    task = ec2.import_snapshot(DiskContainer={"Url": str(luks)})
    done = wait_import_snapshot(ec2, task["ImportTaskId"])["SnapshotTaskDetail"]
    assert done["Status"] == "deleted"
    assert done["StatusMessage"].startswith("ClientError: ") and "luks" in done["StatusMessage"]


# --- guests -----------------------------------------------------------------------------------
@dataclass
class Vms:
    kiln: LiveKiln
    owner: Creds
    micro: str
    key_name: str
    key_file: Path

    def ec2(self) -> Any:
        return self.kiln.client(self.owner)

    @property
    def region_dir(self) -> Path:
        return self.kiln.data_dir / "regions" / REGION


def _qemu_pids(data_dir: Path) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                argv = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in argv.split(b"\0")[0] and str(data_dir).encode() in argv:
                pids.append(int(p.name))
    return pids


@pytest.fixture(scope="module")
def vms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vms]:
    data_dir = tmp_path_factory.mktemp("kiln-guest-disks")
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"  # KVM hangs on these hosts (the probe would say so too)
    kiln = LiveKiln(data_dir, None)
    owner: Creds | None = None
    try:
        baked = kiln.kiln("bake", "micro", "--data-dir", str(data_dir), "--json")
        assert baked.returncode == 0, baked.stderr
        kiln.start()
        owner = kiln.account("owner")
        ec2 = kiln.client(owner)
        micro = next(r for r in json.loads(baked.stdout) if r["Region"] == REGION)["ImageId"]
        key = ec2.create_key_pair(KeyName="guest-key", KeyType="ed25519")
        key_file = data_dir / "guest-key.pem"
        key_file.write_text(key["KeyMaterial"])
        open_ssh(ec2)
        yield Vms(kiln, owner, micro, "guest-key", key_file)
    finally:
        try:
            if owner is not None and kiln.proc is not None and kiln.proc.poll() is None:
                ec2 = kiln.client(owner)
                ids = [
                    i["InstanceId"]
                    for r in ec2.describe_instances()["Reservations"]
                    for i in r["Instances"]
                    if i["State"]["Name"] != "terminated"
                ]
                if ids:
                    ec2.terminate_instances(InstanceIds=ids)
                    for iid in ids:
                        wait_state(ec2, iid, "terminated")
        finally:
            kiln.stop()
            for pid in _qemu_pids(data_dir):  # never leave a VM behind, whatever failed
                os.kill(pid, signal.SIGKILL)
            kiln.release_networks()
            if saved is None:
                os.environ.pop("KILN_ACCEL", None)
            else:
                os.environ["KILN_ACCEL"] = saved


def guest_run(inst: dict[str, Any], key_file: Path, command: str, stdin: bytes = b"") -> str:
    """Run ``command`` in the guest over SSH, feeding it ``stdin``; asserts it exits 0."""
    host, port = ssh_address(inst)
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
        chan_in, out, err = client.exec_command(command, timeout=120)
        chan_in.write(stdin)
        chan_in.channel.shutdown_write()
        text = str(out.read().decode())
        rc = out.channel.recv_exit_status()
        assert rc == 0, f"{command!r} exited {rc}: {err.read().decode()}"
        return text
    finally:
        client.close()


def _write_sector0(inst: dict[str, Any], key_file: Path, size_bytes: int, data: bytes) -> None:
    """Write ``data`` at sector 0 of the guest's disk of ``size_bytes`` (found by its size)."""
    find = (
        f'for d in /sys/block/vd*; do [ "$(cat $d/size)" = {size_bytes // 512} ] '
        "&& echo ${d##*/}; done; true"
    )
    devs = guest_run(inst, key_file, find).split()
    assert len(devs) == 1, devs
    # fsync of the block device makes the guest send a flush: with NoReboot the disk is read
    # while the guest runs, and QEMU writes the overlay's cluster tables on a flush.
    guest_run(inst, key_file, f"dd of=/dev/{devs[0]} bs={len(data)} conv=fsync 2>/dev/null", data)
    echoed = guest_run(inst, key_file, f"head -c {len(data)} /dev/{devs[0]} | md5sum")
    assert echoed.split()[0] == hashlib.md5(data).hexdigest()  # noqa: S324  # a checksum


def _export(vms: Vms, snapshot_id: str, out: Path) -> Path:
    return export_snapshot_cli(vms.kiln, snapshot_id, out, REGION)


def test_create_image_and_snapshots_store_guest_written_headers_as_data(
    vms: Vms, tmp_path: Path
) -> None:
    ec2 = vms.ec2()
    qcow = qcow2_with_backing(tmp_path)[:HEADER].ljust(HEADER, b"\0")
    luks = luks_image(tmp_path)[:HEADER]
    r = ec2.run_instances(
        ImageId=vms.micro,
        MinCount=1,
        MaxCount=1,
        InstanceType=TYPE,
        KeyName=vms.key_name,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 1, "DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdc", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": True}},
        ],
    )
    iid = r["Instances"][0]["InstanceId"]
    inst = wait_state(ec2, iid, "running")
    wait_ready(ec2, iid)
    _write_sector0(inst, vms.key_file, 1 * GIB, qcow)  # /dev/sdb: a qcow2 with a backing file
    _write_sector0(inst, vms.key_file, 2 * GIB, luks)  # /dev/sdc: a LUKS header
    vols = {
        m["DeviceName"]: m["Ebs"]["VolumeId"] for m in describe(ec2, iid)["BlockDeviceMappings"]
    }

    image_id = ec2.create_image(InstanceId=iid, Name="guest-headers", NoReboot=True)["ImageId"]
    image = wait_image(ec2, image_id)
    assert image["State"] == "available", image.get("StateReason")
    snaps = {m["DeviceName"]: m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]}
    assert set(snaps) == {"/dev/xvda", "/dev/sdb", "/dev/sdc"}
    # The new image's data snapshots hold exactly what the guest wrote, header at offset 0.
    want_b = reference(tmp_path / "want-b.raw", 1 * GIB, qcow)
    want_c = reference(tmp_path / "want-c.raw", 2 * GIB, luks)
    assert same_bytes(_export(vms, snaps["/dev/sdb"], tmp_path / "b.raw"), want_b)
    assert same_bytes(_export(vms, snaps["/dev/sdc"], tmp_path / "c.raw"), want_c)

    # CreateSnapshot of the in-use volume reads the same bytes.
    snap = ec2.create_snapshot(VolumeId=vols["/dev/sdb"])["SnapshotId"]
    done = wait_snapshot(ec2, snap)
    assert done["State"] == "completed", done.get("StateMessage")
    assert same_bytes(_export(vms, snap, tmp_path / "b2.raw"), want_b)

    # A volume made from that snapshot stands on a base that starts with the header: its own
    # snapshot (incremental, against the base) is stored too.
    vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snaps["/dev/sdb"])
    assert wait_volume(ec2, vol["VolumeId"])["State"] == "available"
    again = ec2.create_snapshot(VolumeId=vol["VolumeId"])["SnapshotId"]
    done = wait_snapshot(ec2, again)
    assert done["State"] == "completed", done.get("StateMessage")
    assert same_bytes(_export(vms, again, tmp_path / "b3.raw"), want_b)
    ec2.delete_volume(VolumeId=vol["VolumeId"])
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")


# The guest's power button: while /run/slow-shutdown exists (this boot only), announce the press
# on the console and take 10 s before powering off, so the test can kill Kiln mid-shutdown.
SLOW_SHUTDOWN = """#!/bin/sh
cat > /etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
if [ -e /run/slow-shutdown ]; then
    echo "kiln-test: power button pressed" > /dev/console
    sleep 10
fi
exec /sbin/poweroff
EOF
chmod 755 /etc/acpi/PWRF/00000080
touch /run/slow-shutdown
"""


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat.rsplit(b")", 1)[1].split()[0] == b"Z"


def test_create_image_resumed_after_kill_9_boots_the_instance_again(vms: Vms) -> None:
    ec2 = vms.ec2()
    r = ec2.run_instances(
        ImageId=vms.micro,
        MinCount=1,
        MaxCount=1,
        InstanceType=TYPE,
        KeyName=vms.key_name,
        UserData=SLOW_SHUTDOWN,
    )
    iid = r["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    assert "kiln: user-data exit=0" in wait_ready(ec2, iid)
    pid = int((vms.region_dir / "instances" / iid / "qemu.pid").read_text())

    image_id = ec2.create_image(InstanceId=iid, Name="resumed")["ImageId"]  # reboots the guest
    _until(
        "the guest shutting down",
        lambda: (
            "kiln-test: power button pressed"
            in (ec2.get_console_output(InstanceId=iid).get("Output") or "")
        ),
    )
    assert vms.kiln.proc is not None
    vms.kiln.proc.kill()  # kill -9 while the job waits for the guest to power off
    vms.kiln.proc.wait()
    _until("the guest powered off", lambda: _gone(pid), timeout=120)  # Kiln is down meanwhile

    vms.kiln.start()
    ec2 = vms.ec2()
    image = wait_image(ec2, image_id)
    assert image["State"] == "available", image.get("StateReason")
    # The job boots the instance before it makes the image available: as without the crash,
    # the instance is running, with a fresh VM, and stays so (the watcher leaves it alone).
    inst = describe(ec2, iid)
    assert inst["State"]["Name"] == "running", inst.get("StateReason")
    wait_ready(ec2, iid)
    new_pid = int((vms.region_dir / "instances" / iid / "qemu.pid").read_text())
    assert new_pid != pid and not _gone(new_pid)
    time.sleep(5)  # a couple of watcher ticks
    inst = describe(ec2, iid)
    assert inst["State"]["Name"] == "running" and "StateReason" not in inst
    assert guest_run(inst, vms.key_file, "hostname").strip() == iid
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
