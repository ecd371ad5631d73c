"""NetnsNetworkHost with pseudo guests (namespaces behind veth pairs where QEMU's taps would be):
DHCP, the filter between guests, the router and metadata addresses, public forwards and their
live changes, restart (reconcile) and teardown. No VM boots here (see test_compute_network_vm)."""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from netlab import Guest, Lab, sh

from kiln.compute.network import dhcp, netns
from kiln.compute.network.host import public_ports
from kiln.compute.network.types import (
    METADATA_ADDRESS,
    FlowRule,
    InstanceMetadata,
    MetadataOptions,
    Nic,
    SubnetNet,
    VpcNet,
)

ALL = (FlowRule("-1", -1, -1, ("0.0.0.0/0",)),)


def _tcp(port: int, *cidrs: str) -> FlowRule:
    return FlowRule("tcp", port, port, cidrs)


def _vpc(lab: Lab, name: str, cidr: str, *subnets: str) -> VpcNet:
    vpc_id = lab.vpc_id(name)
    return VpcNet(
        vpc_id, cidr, tuple(SubnetNet(f"subnet-{vpc_id[4:]}{i}", c) for i, c in enumerate(subnets))
    )


def _nic(vpc: VpcNet, subnet: int, n: int, ip: str, public: str | None = None, **kw: object) -> Nic:
    return Nic(
        instance_id=f"i-{vpc.vpc_id[4:]}{n:04x}",
        vpc_id=vpc.vpc_id,
        subnet_id=vpc.subnets[subnet].subnet_id,
        mac=f"52:54:00:7a:{n // 256:02x}:{n % 256:02x}",
        private_ip=ip,
        public_ip=public,
        **kw,  # type: ignore[arg-type]
    )


def _meta(nic: Nic, vpc: VpcNet, **options: object) -> InstanceMetadata:
    return InstanceMetadata(
        instance_id=nic.instance_id,
        image_id="ami-0123456789abcdef0",
        instance_type="t3.micro",
        availability_zone="us-east-1a",
        region="us-east-1",
        account_id="123456789012",
        mac=nic.mac,
        private_ip=nic.private_ip,
        public_ip=nic.public_ip,
        subnet_id=nic.subnet_id,
        vpc_id=nic.vpc_id,
        subnet_cidr=vpc.subnets[0].cidr,
        vpc_cidr=vpc.cidr,
        security_groups=("default",),
        security_group_ids=("sg-0123",),
        options=MetadataOptions(**options),  # type: ignore[arg-type]
    )


def _host_connect(ip: str, port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection((ip, port), timeout=timeout)


def _exchange(ip: str, port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, read the answer to EOF."""
    with _host_connect(ip, port) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while data := s.recv(65536):
            out += data
        return out


def test_public_ports_only_for_rules_a_host_client_can_match() -> None:
    vpc = VpcNet("vpc-1", "10.0.0.0/16", (SubnetNet("subnet-1", "10.0.1.0/24"),))
    nic = _nic(
        vpc,
        0,
        1,
        "10.0.1.5",
        "127.0.0.9",
        ingress=(
            _tcp(22, "0.0.0.0/0"),
            _tcp(80, "10.0.0.0/16"),  # VPC only: no host listener
            FlowRule("tcp", 8000, 8002, ("127.0.0.2/32",)),
            FlowRule("udp", 53, 53, ("0.0.0.0/0",)),  # UDP is not forwarded
            FlowRule("icmp", -1, -1, ("0.0.0.0/0",)),
        ),
    )
    ports = public_ports(nic)
    assert sorted(ports) == [22, 8000, 8001, 8002]
    assert [str(n) for n in ports[8001]] == ["127.0.0.2/32"]
    everything = public_ports(_nic(vpc, 0, 1, "10.0.1.5", "127.0.0.9", ingress=ALL))
    assert len(everything) == 1024 and min(everything) == 1 and max(everything) == 1024
    assert public_ports(_nic(vpc, 0, 1, "10.0.1.5", None, ingress=ALL)) == {}


def test_dhcp_filtering_between_guests_and_vpcs(lab: Lab) -> None:
    v1 = _vpc(lab, "a", "10.20.0.0/16", "10.20.1.0/24", "10.20.2.0/24")
    v2 = _vpc(lab, "b", "10.30.0.0/16", "10.30.1.0/24")
    lab.host.ensure_vpc(v1)
    lab.host.ensure_vpc(v1)  # idempotent
    lab.host.ensure_vpc(v2)
    a = lab.guest(_nic(v1, 0, 1, "10.20.1.10", egress=ALL, ingress=ALL))
    # b: port 5000 from a only; 5001 from the whole VPC
    b_in = (_tcp(5000, "10.20.1.10/32"), _tcp(5001, "10.20.0.0/16"))
    b = lab.guest(_nic(v1, 0, 2, "10.20.1.11", egress=ALL, ingress=b_in))
    c = lab.guest(_nic(v1, 1, 3, "10.20.2.10", egress=(), ingress=(_tcp(5000, "10.20.0.0/16"),)))
    d = lab.guest(_nic(v2, 0, 4, "10.30.1.10", egress=ALL, ingress=ALL))
    for g in (a, b, c, d):
        assert g.dhcp() == f"{g.nic.private_ip}/24"
    assert "default via 10.20.2.1" in c.run("ip", "route")
    for g in (a, b, c, d):
        g.serve(5000)
        g.serve(5001)

    assert a.can_reach("10.20.1.11", 5000)  # same subnet (bridged), allowed
    assert a.can_reach("10.20.1.11", 5001)
    assert a.can_reach("10.20.2.10", 5000)  # other subnet (routed), allowed
    assert not a.can_reach("10.20.2.10", 5001)  # c's ingress lacks 5001
    assert not c.can_reach("10.20.1.11", 5000)  # c has no egress rule at all
    assert not b.can_reach("10.20.2.10", 5001)
    assert not d.can_reach("10.20.1.11", 5001)  # another VPC: no route there
    assert not a.can_reach("10.30.1.10", 5000)

    # the namespace itself: DHCP and ping to the router, TCP 80 to the metadata address only
    vpc_thread = lab.host.netns_thread(v1.vpc_id)
    probe = vpc_thread.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("0.0.0.0", 2222))
    probe.listen(8)
    try:
        assert not a.can_reach("10.20.1.1", 2222)
        assert not a.can_reach(METADATA_ADDRESS, 2222)
        assert not c.can_reach("10.20.1.1", 2222)  # another subnet's router address
    finally:
        probe.close()
    assert "1 packets received" in a.run("busybox", "ping", "-c", "1", "-W", "2", "10.20.1.1")
    assert a.can_reach(METADATA_ADDRESS, 80)
    assert " 0 packets received" in a.run(
        "busybox", "ping", "-c", "1", "-W", "1", "10.20.1.11", check=False
    )
    assert "1 packets received" in b.run("busybox", "ping", "-c", "1", "-W", "2", "10.20.1.10")

    # live rule change: b now admits c on 5000 and c gets egress; then revoke again
    lab.host.update(
        Nic(**{**_fields(b.nic), "ingress": (*b_in, _tcp(5000, "10.20.2.10/32"))})  # type: ignore[arg-type]
    )
    assert not c.can_reach("10.20.1.11", 5000)  # still no egress on c
    lab.host.update(Nic(**{**_fields(c.nic), "egress": ALL}))  # type: ignore[arg-type]
    assert c.can_reach("10.20.1.11", 5000)
    lab.host.update(b.nic)
    assert not c.can_reach("10.20.1.11", 5000)

    # a guest that takes another's address is dropped (and cannot steal its flows)
    a.run("ip", "addr", "add", "10.20.1.12/24", "dev", "eth0")
    s = a.thread().socket()
    s.settimeout(1.5)
    s.bind(("10.20.1.12", 0))
    with pytest.raises(OSError):
        s.connect(("10.20.1.11", 5001))
    s.close()


def _fields(nic: Nic) -> dict[str, object]:
    return {f: getattr(nic, f) for f in Nic.__dataclass_fields__}


def test_metadata_from_a_guest_v1_and_v2(lab: Lab) -> None:
    v = _vpc(lab, "m", "10.40.0.0/16", "10.40.1.0/24")
    lab.host.ensure_vpc(v)
    nic = _nic(v, 0, 7, "10.40.1.20", egress=ALL)
    g = lab.guest(nic)
    lab.meta[(v.vpc_id, nic.private_ip)] = _meta(nic, v)
    g.dhcp()
    url = f"http://{METADATA_ADDRESS}/latest/meta-data/instance-id"
    assert g.run("busybox", "wget", "-q", "-O", "-", url) == nic.instance_id

    def request(method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        sock = g.connect(METADATA_ADDRESS, 80, timeout=5)
        conn = http.client.HTTPConnection(METADATA_ADDRESS, 80, timeout=5)
        conn.sock = sock
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body

    status, token = request("PUT", "/latest/api/token", {TTL: "60"})
    assert status == 200
    assert request("GET", "/latest/meta-data/local-ipv4", {TOKEN: token.decode()}) == (
        200,
        b"10.40.1.20",
    )
    assert request("GET", "/latest/meta-data/local-ipv4", {TOKEN: "bogus"})[0] == 401
    lab.meta[(v.vpc_id, nic.private_ip)] = _meta(nic, v, http_tokens="required")
    assert request("GET", "/latest/meta-data/local-ipv4", {})[0] == 401
    lab.meta[(v.vpc_id, nic.private_ip)] = _meta(nic, v, http_endpoint="disabled")
    assert request("GET", "/latest/meta-data/local-ipv4", {})[0] == 403
    # a guest the rules do not know (no metadata) is refused
    lab.meta.clear()
    assert request("GET", "/latest/meta-data/", {})[0] == 403


TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"


def test_public_forwards_follow_the_rules_live(lab: Lab, fds: Callable[[], int]) -> None:
    v = _vpc(lab, "f", "10.50.0.0/16", "10.50.1.0/24")
    lab.host.ensure_vpc(v)
    pub = f"127.77.{int(lab.tag[:2], 16)}.{int(lab.tag[2:4], 16) or 1}"
    nic = _nic(v, 0, 9, "10.50.1.30", pub, ingress=(_tcp(5000, "0.0.0.0/0"),), egress=ALL)
    g = lab.guest(nic)
    g.dhcp()
    g.serve(5000)
    g.serve(5001)
    assert lab.host.forwarded_ports(nic.instance_id) == [5000]
    assert _exchange(pub, 5000, b"x" * 100000) == b"got 100000"  # half-close passed on
    with pytest.raises(ConnectionRefusedError):
        _host_connect(pub, 5001)

    # many connections at once, and no descriptor left behind afterwards
    base = fds()
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(_exchange(pub, 5000, b"y" * i)))
        for i in range(1, 41)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"got {i}".encode() for i in range(1, 41))
    deadline = time.monotonic() + 5
    while fds() > base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fds() <= base

    # revoke: refused at once; an open connection stays (a tracked flow); re-add: works again
    held = _host_connect(pub, 5000)
    lab.host.update(Nic(**{**_fields(nic), "ingress": ()}))  # type: ignore[arg-type]
    with pytest.raises(ConnectionRefusedError):
        _host_connect(pub, 5000)
    held.sendall(b"abc")
    held.shutdown(socket.SHUT_WR)
    assert held.recv(100) == b"got 3"
    held.close()
    lab.host.update(nic)
    assert _exchange(pub, 5000, b"back") == b"got 4"

    # a rule for another host address: the listener is there, this client is reset
    other = Nic(**{**_fields(nic), "ingress": (_tcp(5000, "127.0.0.2/32"),)})  # type: ignore[arg-type]
    lab.host.update(other)
    with pytest.raises(OSError):
        _exchange(pub, 5000, b"no")
    lab.host.update(nic)

    # a guest port with nothing listening: the client sees a reset, not a hang
    lab.host.update(Nic(**{**_fields(nic), "ingress": (_tcp(5002, "0.0.0.0/0"),)}))  # type: ignore[arg-type]
    with pytest.raises(OSError):
        _exchange(pub, 5002, b"nobody")

    lab.host.unplug(nic.instance_id)
    with pytest.raises(ConnectionRefusedError):
        _host_connect(pub, 5002)
    assert lab.host.forwarded_ports(nic.instance_id) == []


def test_restart_reconcile_and_delete(lab: Lab, tmp_path: Path) -> None:
    v1 = _vpc(lab, "r", "10.60.0.0/16", "10.60.1.0/24")
    v2 = _vpc(lab, "s", "10.61.0.0/16", "10.61.1.0/24")
    lab.host.ensure_vpc(v1)
    lab.host.ensure_vpc(v2)
    pub = f"127.78.{int(lab.tag[:2], 16)}.{int(lab.tag[2:4], 16) or 1}"
    nic = _nic(v1, 0, 11, "10.60.1.40", pub, ingress=(_tcp(5000, "0.0.0.0/0"),), egress=ALL)
    g = lab.guest(nic)
    lab.meta[(v1.vpc_id, nic.private_ip)] = _meta(nic, v1)
    stale = _nic(v1, 0, 12, "10.60.1.41")
    lab.host.plug(stale, "/nonexistent")
    g.dhcp()
    g.serve(5000)
    assert _exchange(pub, 5000, b"1") == b"got 1"
    dns_pid = dhcp.running_pid(lab.state_dir / v1.vpc_id)
    assert dns_pid is not None

    # "kiln serve" stops (in-process parts only) and starts again
    lab.host.close()
    with pytest.raises(ConnectionRefusedError):
        _host_connect(pub, 5000)
    assert dhcp.running_pid(lab.state_dir / v1.vpc_id) == dns_pid  # DHCP kept running
    host = lab.new_host()
    host.reconcile([v1], [nic])
    assert _exchange(pub, 5000, b"22") == b"got 2"
    url = f"http://{METADATA_ADDRESS}/latest/meta-data/instance-id"
    assert g.run("busybox", "wget", "-q", "-O", "-", url) == nic.instance_id
    assert dhcp.running_pid(lab.state_dir / v1.vpc_id) == dns_pid
    ports = sh("ip", "-n", host.namespace(v1.vpc_id), "-o", "link", "show", "master", "br0").stdout
    assert "k" in ports and ports.count("master br0") == 1  # the stale NIC's tap is gone
    assert set(netns.vpc_namespaces(lab.prefix)) == {v1.vpc_id}  # v2 was not listed
    assert not (lab.state_dir / v2.vpc_id).exists()

    host.unplug(nic.instance_id)
    host.delete_vpc(v1.vpc_id)
    assert netns.vpc_namespaces(lab.prefix) == {}
    deadline = time.monotonic() + 5
    while Path(f"/proc/{dns_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cmd = Path(f"/proc/{dns_pid}/cmdline")
    assert not cmd.exists() or b"dnsmasq" not in cmd.read_bytes()
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run(["ip", "netns", "exec", host.namespace(v1.vpc_id), "true"], check=True)


def test_a_guest_with_another_mac_is_cut_off(lab: Lab) -> None:
    v = _vpc(lab, "u", "10.70.0.0/16", "10.70.1.0/24")
    lab.host.ensure_vpc(v)
    g: Guest = lab.guest(_nic(v, 0, 13, "10.70.1.50"))
    # frames must carry the NIC's MAC: with another one, not even DHCP gets through
    g.run("ip", "link", "set", "eth0", "address", "52:54:00:99:99:99")
    assert g.dhcp() == ""
