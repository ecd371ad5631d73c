"""``NetnsNetworkHost``: the VPCs of kiln/compute/network/types.py made of network namespaces.

Per VPC, one namespace ``kiln-<vpc-id>`` (kept in /run/netns, so it outlives ``kiln serve``):
- ``lo`` up and a bridge ``br0`` holding every subnet's router address (base + 1, with the
  subnet's prefix) and 169.254.169.254/32; IPv4 forwarding on, so the namespace routes between
  the subnets of its VPC; no other interface, so no traffic leaves it.
- DHCP: dnsmasq in the namespace (kiln/compute/network/dhcp.py), static leases only.
- Filtering: one nftables ruleset replaced atomically on every change (nft.py).
- The metadata service at 169.254.169.254:80 (imds.py), in this process, over a socket made in
  the namespace.
Per plugged NIC: a persistent tap device in the namespace, a port of ``br0``, that QEMU opens
(QEMU runs in the namespace through ``ip netns exec``), and the public forwards from its
127.x address on the host (forward.py).

The host's own namespace gets no address but 127.0.0.0/8 listeners: nothing here ever puts a
private or link-local address on it, nor sends traffic to one from it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from kiln import errors
from kiln.compute.network import dhcp, netns, nft
from kiln.compute.network.forward import Forwarder
from kiln.compute.network.imds import Imds, ImdsServer
from kiln.compute.network.netns import NetnsThread
from kiln.compute.network.types import (
    METADATA_ADDRESS,
    Attachment,
    MetadataLookup,
    Nic,
    VpcNet,
)
from kiln.errors import KilnError

log = logging.getLogger(__name__)

BRIDGE = "br0"
TOOLS = {"ip": "iproute2", "nft": "nftables", "dnsmasq": "dnsmasq-base"}
#: At most this many public ports are forwarded per NIC (lowest port numbers first).
MAX_FORWARDS = 1024
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.send_redirects=0",
    "net.ipv4.conf.default.send_redirects=0",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.bridge.bridge-nf-call-iptables=1",  # bridged IPv4 passes the inet hooks (nft.py)
    "net.bridge.bridge-nf-call-ip6tables=0",
    "net.bridge.bridge-nf-call-arptables=0",
)


def tap_name(instance_id: str) -> str:
    """The NIC's tap device (15 characters at most, as Linux wants): ``k`` + 12 hex digits of
    a hash of the instance id."""
    return "k" + hashlib.blake2b(instance_id.encode(), digest_size=6).hexdigest()


def public_ports(nic: Nic, cap: int = MAX_FORWARDS) -> dict[int, list[ipaddress.IPv4Network]]:
    """The TCP ports to listen on at the NIC's public address: port -> the peer networks its
    ingress rules allow there. Only networks that can contain a host client (a 127.x
    address) count: ``0.0.0.0/0`` does, ``10.0.0.0/16`` does not. Protocol ``-1`` and TCP
    without ports mean every port; at most ``cap`` ports (the lowest) are kept."""
    ports: dict[int, list[ipaddress.IPv4Network]] = {}
    if nic.public_ip is None:
        return ports
    for rule in nic.ingress:
        proto = rule.protocol.lower()
        if proto not in ("tcp", "6", "-1", "all"):
            continue
        nets = [n for n in nft._ipv4_nets(rule.cidrs) if n.overlaps(LOOPBACK)]
        if not nets:
            continue
        lo, hi = rule.from_port, rule.to_port
        if proto in ("-1", "all") or lo == -1:
            lo, hi = 1, 65535
        for port in range(max(1, lo), min(65535, hi) + 1):
            if port not in ports and len(ports) >= cap:
                break
            ports.setdefault(port, []).extend(nets)
    return dict(sorted(ports.items())[:cap])


class NetnsNetworkHost:
    """:class:`kiln.compute.network.types.NetworkHost` on network namespaces (root only).

    ``state_dir`` is ``kiln.runtime.layout.network_dir(data_dir)``; ``lookup`` tells the
    metadata service who is at an address. Namespaces are named ``prefix + vpc_id``; this host
    owns (and ``reconcile`` removes when unlisted) every ``prefix + "vpc-…"`` namespace, so
    two servers on one machine need different prefixes (tests use their own)."""

    def __init__(self, state_dir: Path, lookup: MetadataLookup, prefix: str = netns.PREFIX) -> None:
        self.state_dir = state_dir
        self.lookup = lookup
        self.prefix = prefix
        self._lock = threading.RLock()
        self._vpcs: dict[str, VpcNet] = {}
        self._nics: dict[str, Nic] = {}
        self._threads: dict[str, NetnsThread] = {}
        self._imds: dict[str, ImdsServer] = {}
        self._forwarder: Forwarder | None = None

    @staticmethod
    def probe() -> str | None:
        """Why this host cannot use namespaces (missing tool), or None if it can try."""
        missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
        if missing:
            return "missing Debian packages: " + " ".join(missing)
        if not Path("/dev/net/tun").exists():
            return "/dev/net/tun is missing"
        return None

    # --- NetworkHost ------------------------------------------------------------------------
    def ensure_vpc(self, vpc: VpcNet) -> None:
        with self._lock:
            reason = self.probe()
            if reason is not None:
                raise KilnError(errors.InsufficientInstanceCapacity, f"VPC networking: {reason}")
            name = self._ns(vpc.vpc_id)
            created = not netns.exists(name)
            try:
                if created:
                    netns.run(["ip", "netns", "add", name])
                self._shape(name, vpc)
                self._vpcs[vpc.vpc_id] = vpc
                self._apply(vpc.vpc_id)
                self._ensure_imds(vpc.vpc_id)
            except BaseException:
                if created:
                    self.delete_vpc(vpc.vpc_id)
                raise

    def delete_vpc(self, vpc_id: str) -> None:
        with self._lock:
            for iid in [i for i, n in self._nics.items() if n.vpc_id == vpc_id]:
                self._nics.pop(iid)
                if self._forwarder is not None:
                    self._forwarder.remove(iid)
            self._vpcs.pop(vpc_id, None)
            self._stop_in_process(vpc_id)
            vpc_dir = self._vpc_dir(vpc_id)
            dhcp.stop(vpc_dir)
            name = self._ns(vpc_id)
            if netns.exists(name):
                netns.run(["ip", "netns", "del", name])
            shutil.rmtree(vpc_dir, ignore_errors=True)
            log.info("%s: VPC network deleted", vpc_id)

    def plug(self, nic: Nic, run_dir: str) -> Attachment:
        with self._lock:
            vpc = self._vpc(nic)
            name = self._ns(vpc.vpc_id)
            tap = tap_name(nic.instance_id)
            old = self._nics.get(nic.instance_id)
            self._ensure_tap(name, tap)
            self._nics[nic.instance_id] = nic
            try:
                self._apply(vpc.vpc_id)
                self._forward(nic)
            except BaseException:
                if old is None:
                    self.unplug(nic.instance_id)
                raise
            return Attachment(
                netns.exec_argv(name),
                (
                    "-netdev",
                    f"tap,id=net0,ifname={tap},script=no,downscript=no",
                    "-device",
                    f"virtio-net-pci,netdev=net0,mac={nic.mac}",
                ),
            )

    def update(self, nic: Nic) -> None:
        with self._lock:
            if nic.instance_id not in self._nics:
                raise KilnError(
                    errors.IncorrectInstanceState, f"{nic.instance_id}: its NIC is not plugged"
                )
            self._vpc(nic)
            self._nics[nic.instance_id] = nic
            self._apply(nic.vpc_id)
            self._forward(nic)

    def update_plugged(self, nics: Sequence[Nic]) -> None:
        with self._lock:
            plugged = [n for n in nics if n.instance_id in self._nics]
            for nic in plugged:
                self._vpc(nic)
                self._nics[nic.instance_id] = nic
            for vpc_id in sorted({n.vpc_id for n in plugged}):
                self._apply(vpc_id)
            for nic in plugged:
                self._forward(nic)

    def unplug(self, instance_id: str) -> None:
        with self._lock:
            nic = self._nics.pop(instance_id, None)
            if self._forwarder is not None:
                self._forwarder.remove(instance_id)
            if nic is None:
                return
            name = self._ns(nic.vpc_id)
            if netns.exists(name):
                dhcp.release(name, nic)
                netns.ip(name, "link", "del", tap_name(instance_id), check=False)
            if nic.vpc_id in self._vpcs:
                self._apply(nic.vpc_id)

    def reconcile(self, vpcs: Sequence[VpcNet], nics: Sequence[Nic]) -> None:
        with self._lock:
            want = {v.vpc_id: v for v in vpcs}
            stale = set(self._vpcs) | set(netns.vpc_namespaces(self.prefix))
            if self.state_dir.is_dir():
                stale |= {p.name for p in self.state_dir.iterdir() if p.is_dir()}
            for vpc_id in sorted(stale - set(want)):
                self.delete_vpc(vpc_id)
            keep = {n.instance_id: n for n in nics if n.vpc_id in want}
            for iid in [i for i in self._nics if i not in keep]:
                self.unplug(iid)
            self._nics = dict(keep)
            for vpc in vpcs:
                self.ensure_vpc(vpc)
                name = self._ns(vpc.vpc_id)
                taps = {tap_name(n.instance_id) for n in keep.values() if n.vpc_id == vpc.vpc_id}
                for tap in self._ports(name) - taps:
                    netns.ip(name, "link", "del", tap, check=False)
                for tap in taps:
                    self._ensure_tap(name, tap)
            for nic in keep.values():
                self._forward(nic)

    def close(self) -> None:
        with self._lock:
            if self._forwarder is not None:
                self._forwarder.close()
                self._forwarder = None
            for vpc_id in list(set(self._imds) | set(self._threads)):
                self._stop_in_process(vpc_id)

    # --- introspection (tests, diagnostics) -------------------------------------------------
    def forwarded_ports(self, instance_id: str) -> list[int]:
        return self._forwarder.ports(instance_id) if self._forwarder else []

    def namespace(self, vpc_id: str) -> str:
        """The name of the VPC's namespace."""
        return self._ns(vpc_id)

    def netns_thread(self, vpc_id: str) -> NetnsThread:
        """The worker thread inside the VPC's namespace (sockets made there)."""
        with self._lock:
            t = self._threads.get(vpc_id)
            if t is None:
                t = self._threads[vpc_id] = NetnsThread(self._ns(vpc_id))
            return t

    # --- helpers ----------------------------------------------------------------------------
    def _ns(self, vpc_id: str) -> str:
        return netns.ns_name(vpc_id, self.prefix)

    def _vpc_dir(self, vpc_id: str) -> Path:
        return self.state_dir / vpc_id

    def _vpc(self, nic: Nic) -> VpcNet:
        vpc = self._vpcs.get(nic.vpc_id)
        if vpc is None:
            raise KilnError(
                errors.InsufficientInstanceCapacity,
                f"{nic.instance_id}: the network of {nic.vpc_id} is not set up",
            )
        subnet = next((s for s in vpc.subnets if s.subnet_id == nic.subnet_id), None)
        if subnet is None or ipaddress.ip_address(nic.private_ip) not in ipaddress.ip_network(
            subnet.cidr, strict=False
        ):
            raise KilnError(
                errors.InvalidParameterValue,
                f"{nic.instance_id}: {nic.private_ip} is not in subnet {nic.subnet_id} "
                f"of {nic.vpc_id}",
            )
        return vpc

    def _shape(self, name: str, vpc: VpcNet) -> None:
        """lo and br0 up, br0's addresses exactly the routers + the metadata address."""
        netns.ip(name, "link", "set", "lo", "up")
        if not netns.ip(name, "-j", "link", "show", "dev", BRIDGE, check=False).strip():
            netns.ip(name, "link", "add", BRIDGE, "type", "bridge")
        netns.ip(name, "link", "set", BRIDGE, "up")
        netns.run([*netns.exec_argv(name), "sysctl", "-q", "-w", *SYSCTLS])
        want = {f"{METADATA_ADDRESS}/32"}
        for s in vpc.subnets:
            net = ipaddress.ip_network(s.cidr, strict=False)
            want.add(f"{nft.router_address(s.cidr)}/{net.prefixlen}")
        have = set()
        for link in json.loads(netns.ip(name, "-j", "-4", "addr", "show", "dev", BRIDGE) or "[]"):
            for a in link.get("addr_info", []):
                have.add(f"{a['local']}/{a['prefixlen']}")
        for addr in sorted(have - want):
            netns.ip(name, "addr", "del", addr, "dev", BRIDGE)
        for addr in sorted(want - have):
            netns.ip(name, "addr", "add", addr, "dev", BRIDGE)

    @staticmethod
    def _ports(name: str) -> set[str]:
        out = netns.ip(name, "-j", "link", "show", "master", BRIDGE, check=False)
        return {link["ifname"] for link in json.loads(out or "[]")}

    @staticmethod
    def _ensure_tap(name: str, tap: str) -> None:
        if not netns.ip(name, "-j", "link", "show", "dev", tap, check=False).strip():
            netns.ip(name, "tuntap", "add", "dev", tap, "mode", "tap")
        netns.ip(name, "link", "set", "dev", tap, "master", BRIDGE, "up")

    def _apply(self, vpc_id: str) -> None:
        """The namespace's nft ruleset and DHCP hosts for the VPC's NICs now."""
        vpc = self._vpcs[vpc_id]
        name = self._ns(vpc_id)
        nics = sorted(
            (n for n in self._nics.values() if n.vpc_id == vpc_id), key=lambda n: n.instance_id
        )
        rules = nft.ruleset(vpc, [(n, tap_name(n.instance_id)) for n in nics])
        netns.run([*netns.exec_argv(name), "nft", "-f", "-"], stdin=rules)
        dhcp.ensure(name, self._vpc_dir(vpc_id), vpc.subnets, nics)

    def _ensure_imds(self, vpc_id: str) -> None:
        if vpc_id in self._imds:
            return
        sock = self.netns_thread(vpc_id).socket()
        try:
            server = ImdsServer(Imds(vpc_id, self.lookup), sock)
            server.start()
        except OSError as e:
            sock.close()
            raise KilnError(
                errors.InsufficientInstanceCapacity,
                f"{vpc_id}: cannot start the metadata service: {e}",
            ) from e
        self._imds[vpc_id] = server

    def _forward(self, nic: Nic) -> None:
        if self._forwarder is None:
            self._forwarder = Forwarder()
        if nic.public_ip is None:
            self._forwarder.remove(nic.instance_id)
            return
        if ipaddress.ip_address(nic.public_ip) not in LOOPBACK:
            raise KilnError(
                errors.InvalidParameterValue,
                f"{nic.instance_id}: public address {nic.public_ip} is not in 127.0.0.0/8",
            )
        failed = self._forwarder.set(
            nic.instance_id,
            self.netns_thread(nic.vpc_id),
            nic.public_ip,
            nic.private_ip,
            public_ports(nic),
        )
        if failed:
            log.warning("%s: ports not forwarded (in use on the host): %s", nic.instance_id, failed)

    def _stop_in_process(self, vpc_id: str) -> None:
        server = self._imds.pop(vpc_id, None)
        if server is not None:
            server.stop()
        thread = self._threads.pop(vpc_id, None)
        if thread is not None:
            thread.close()
