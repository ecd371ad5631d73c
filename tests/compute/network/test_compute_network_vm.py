"""Real micro guests on NetnsNetworkHost networks, started by QemuDriver with the NIC's
Attachment: DHCP, SSH at the public address following the rules live, two guests of a VPC
talking (across subnets, routed), isolation from another VPC (same CIDR), IMDS v1 and v2 from
inside a guest, and nothing but DHCP/ICMP/metadata reachable on the namespace itself.

Three VMs boot at once (TCG): the whole file is one test to keep boots few."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from netlab import Lab

from kiln.bake.micro import BakeResult
from kiln.compute.driver import DiskSpec, VmHandle, VmSpec
from kiln.compute.network.types import (
    METADATA_ADDRESS,
    FlowRule,
    InstanceMetadata,
    Nic,
    SubnetNet,
    VpcNet,
)
from kiln.compute.qemu import QemuDriver
from kiln.compute.seed import make_nocloud_seed

READY_WAIT = 300.0
SSH = FlowRule("tcp", 22, 22, ("0.0.0.0/0",))
IN_VPC = FlowRule("-1", -1, -1, ("10.0.0.0/16",))
ALL = FlowRule("-1", -1, -1, ("0.0.0.0/0",))


def _wait_ready(driver: QemuDriver, vm: VmHandle) -> str:
    ready = f"KILN-READY instance-id={vm.instance_id}\n".encode()
    deadline = time.monotonic() + READY_WAIT
    while ready not in driver.console_output(vm).replace(b"\r\n", b"\n"):
        out = driver.console_output(vm).decode(errors="replace")
        assert driver.is_running(vm), f"VM exited before ready:\n{out}"
        assert time.monotonic() < deadline, f"no readiness line:\n{out}"
        time.sleep(0.3)
    return driver.console_output(vm).decode(errors="replace")


def _ssh(ip: str, key: Path, command: str) -> str:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        ip,
        port=22,
        username="root",
        pkey=paramiko.Ed25519Key.from_private_key_file(str(key)),
        look_for_keys=False,
        allow_agent=False,
        timeout=30,
        banner_timeout=30,
    )
    try:
        _, stdout, _ = client.exec_command(command, timeout=60)
        return str(stdout.read().decode())
    finally:
        client.close()


def _meta(nic: Nic, vpc: VpcNet) -> InstanceMetadata:
    subnet = next(s for s in vpc.subnets if s.subnet_id == nic.subnet_id)
    return InstanceMetadata(
        instance_id=nic.instance_id,
        image_id="ami-0micro",
        instance_type="t3.nano",
        availability_zone="us-east-1a",
        region="us-east-1",
        account_id="123456789012",
        mac=nic.mac,
        private_ip=nic.private_ip,
        public_ip=nic.public_ip,
        subnet_id=nic.subnet_id,
        vpc_id=nic.vpc_id,
        subnet_cidr=subnet.cidr,
        vpc_cidr=vpc.cidr,
        security_groups=("default",),
        security_group_ids=("sg-0",),
    )


@pytest.mark.slow
def test_micro_guests_on_vpc_networks(
    lab: Lab, micro: BakeResult, ssh_key: Path, tmp_path: Path
) -> None:
    driver = QemuDriver()
    t = lab.tag
    v1 = VpcNet(
        lab.vpc_id("1"),
        "10.0.0.0/16",
        (SubnetNet(f"subnet-{t}a", "10.0.1.0/24"), SubnetNet(f"subnet-{t}b", "10.0.2.0/24")),
    )
    v2 = VpcNet(lab.vpc_id("2"), "10.0.0.0/16", (SubnetNet(f"subnet-{t}c", "10.0.2.0/24"),))
    base = f"127.79.{int(t[:2], 16)}"
    a = Nic(f"i-{t}000a", v1.vpc_id, f"subnet-{t}a", "52:54:00:a1:00:0a", "10.0.1.10",
            f"{base}.10", ingress=(SSH, IN_VPC), egress=(ALL,))  # fmt: skip
    b = Nic(f"i-{t}000b", v1.vpc_id, f"subnet-{t}b", "52:54:00:a1:00:0b", "10.0.2.20",
            f"{base}.11", ingress=(SSH, IN_VPC), egress=(ALL,))  # fmt: skip
    c = Nic(f"i-{t}000c", v2.vpc_id, f"subnet-{t}c", "52:54:00:a1:00:0c", "10.0.2.30",
            f"{base}.12", ingress=(SSH, IN_VPC), egress=(ALL,))  # fmt: skip
    for vpc in (v1, v2):
        lab.host.ensure_vpc(vpc)
    for nic, vpc in ((a, v1), (b, v1), (c, v2)):
        lab.meta[(nic.vpc_id, nic.private_ip)] = _meta(nic, vpc)

    pub = [ssh_key.with_suffix(".pub").read_text()]
    vms: list[VmHandle] = []
    try:
        for nic in (a, b, c):
            overlay = tmp_path / f"{nic.instance_id}.qcow2"
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(micro.path), "-F", "raw",
                 str(overlay)],
                check=True,
            )  # fmt: skip
            seed = make_nocloud_seed(
                tmp_path / f"{nic.instance_id}.seed", nic.instance_id, nic.instance_id, pub, None
            )
            run_dir = tmp_path / f"run-{nic.instance_id}"
            att = lab.host.plug(nic, str(run_dir))
            spec = VmSpec(nic.instance_id, run_dir, [DiskSpec(overlay, "qcow2")], seed, 1, 256, 0,
                          "tcg", net=att)  # fmt: skip
            vms.append(driver.start(spec))
        for vm in vms:
            _wait_ready(driver, vm)
            assert driver.find(vm.run_dir) == vm  # _is_ours sees QEMU behind `ip netns exec`

        # DHCP gave each guest its private address; SSH at the public address
        for nic in (a, b, c):
            out = _ssh(nic.public_ip or "", ssh_key, "ip -4 -o addr show dev eth0; ip route")
            assert f"inet {nic.private_ip}/24" in out, out
            assert f"default via {nic.private_ip.rsplit('.', 1)[0]}.1" in out, out

        # A reaches B across subnets (routed in the namespace); C (other VPC, same CIDR) cannot
        probe = "echo | nc -w 3 10.0.2.20 22 | head -c 16; echo; echo rc=$?"
        assert "SSH-2.0-dropbear" in _ssh(a.public_ip or "", ssh_key, probe)
        assert "SSH-2.0" not in _ssh(c.public_ip or "", ssh_key, probe)

        # IMDS v1 and v2 from inside A (busybox wget cannot PUT: the token comes through nc)
        url = f"http://{METADATA_ADDRESS}/latest/meta-data"
        assert _ssh(a.public_ip or "", ssh_key, f"wget -q -O - {url}/instance-id") == a.instance_id
        v2 = (
            "T=$(printf 'PUT /latest/api/token HTTP/1.0\\r\\n"
            "X-aws-ec2-metadata-token-ttl-seconds: 60\\r\\n\\r\\n' "
            f"| nc -w 5 {METADATA_ADDRESS} 80 | tail -n 1); "
            f'wget -q -O - --header "X-aws-ec2-metadata-token: $T" {url}/local-ipv4; echo; '
            f'wget -q -O - --header "X-aws-ec2-metadata-token: x$T" {url}/local-ipv4 2>&1'
        )
        out = _ssh(b.public_ip or "", ssh_key, v2)
        assert out.startswith("10.0.2.20\n") and "401" in out, out

        # the namespace itself: nothing but DHCP, ICMP and metadata:80, even where a service is
        lst = lab.host.netns_thread(v1.vpc_id).socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("0.0.0.0", 2222))
        lst.listen(4)
        try:
            out = _ssh(
                a.public_ip or "",
                ssh_key,
                f"for t in 10.0.1.1 10.0.2.1 {METADATA_ADDRESS}; do "
                "echo | nc -w 2 $t 2222 >/dev/null 2>&1 && echo open $t; done; "
                f"nc -w 2 {METADATA_ADDRESS} 22 </dev/null >/dev/null 2>&1 && echo open 22; "
                "ping -c 1 -W 2 10.0.1.1 | grep -c '1 packets received'",
            )
        finally:
            lst.close()
        assert out.split() == ["1"], out

        # SSH follows the rules live on the running guest: revoke -> refused, re-add -> works
        closed = Nic(
            **{**{f: getattr(a, f) for f in Nic.__dataclass_fields__}, "ingress": (IN_VPC,)}
        )
        lab.host.update(closed)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((a.public_ip or "", 22), timeout=5).close()
        lab.host.update(a)
        assert _ssh(a.public_ip or "", ssh_key, "hostname").strip() == a.instance_id
    finally:
        for vm in vms:
            driver.kill(vm)
        for nic in (a, b, c):
            lab.host.unplug(nic.instance_id)
