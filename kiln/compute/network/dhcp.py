"""DHCP for one VPC: a dnsmasq daemon inside its namespace, with only static leases.

dnsmasq (Debian ``dnsmasq-base``) runs as a daemon, so it outlives a ``kiln serve`` restart;
its files are in the VPC's state directory: ``dnsmasq.pid``, ``dnsmasq.hosts`` (one
``MAC,IP`` line per plugged NIC, re-read on SIGHUP), ``dnsmasq.leases``, ``dnsmasq.log``.
No DNS (``--port=0``): guests get an address, a netmask, a router (the subnet's base + 1) and
no name server. An unknown MAC gets no address (``static`` ranges only).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

from kiln.compute import process
from kiln.compute.network import netns
from kiln.compute.network.nft import router_address
from kiln.compute.network.types import Nic, SubnetNet

log = logging.getLogger(__name__)

PIDFILE = "dnsmasq.pid"
HOSTS = "dnsmasq.hosts"
LEASES = "dnsmasq.leases"
LOG = "dnsmasq.log"
LEASE_TIME = "5m"
BRIDGE = "br0"


def argv(state_dir: Path, subnets: Sequence[SubnetNet]) -> list[str]:
    """dnsmasq's command line (without the ``ip netns exec`` prefix)."""
    d = state_dir.resolve()
    out = [
        "dnsmasq",
        "--conf-file=/dev/null",
        f"--pid-file={d / PIDFILE}",
        f"--dhcp-hostsfile={d / HOSTS}",
        f"--dhcp-leasefile={d / LEASES}",
        f"--log-facility={d / LOG}",
        "--port=0",
        f"--interface={BRIDGE}",
        "--bind-interfaces",
        "--except-interface=lo",
        "--no-hosts",
        "--no-resolv",
        "--dhcp-authoritative",
        "--user=root",  # reads the hosts file on SIGHUP; the data dir may be private to root
        "--group=root",
        "--log-dhcp",
    ]
    for i, s in enumerate(sorted(subnets, key=lambda s: s.cidr)):
        net = ipaddress.ip_network(s.cidr, strict=False)
        tag = f"s{i}"
        out += [
            f"--dhcp-range=set:{tag},{net.network_address},static,{net.netmask},{LEASE_TIME}",
            f"--dhcp-option=tag:{tag},option:router,{router_address(s.cidr)}",
        ]
    return out


def write_hosts(state_dir: Path, nics: Sequence[Nic]) -> None:
    """Replace the hosts file (atomically) with one ``MAC,IP`` line per NIC."""
    lines = "".join(f"{n.mac.lower()},{n.private_ip}\n" for n in sorted(nics, key=lambda n: n.mac))
    tmp = state_dir / f"{HOSTS}.tmp"
    tmp.write_text(lines)
    tmp.replace(state_dir / HOSTS)


def running_pid(state_dir: Path) -> int | None:
    """The pid of this state dir's dnsmasq, if it runs."""
    pid = process.read_pid(state_dir / PIDFILE)
    if pid is None:
        return None
    cmd = process.cmdline(pid)
    marker = f"--pid-file={(state_dir / PIDFILE).resolve()}"
    return pid if cmd and Path(cmd[0]).name == "dnsmasq" and marker in cmd else None


def ensure(ns: str, state_dir: Path, subnets: Sequence[SubnetNet], nics: Sequence[Nic]) -> None:
    """dnsmasq runs in ``ns`` with exactly these subnets and hosts (restarted if its subnets
    changed, told to re-read the hosts file otherwise)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    write_hosts(state_dir, nics)
    want = argv(state_dir, subnets)
    pid = running_pid(state_dir)
    if pid is not None and process.cmdline(pid) == want:
        process.send_signal(pid, signal.SIGHUP)
        return
    stop(state_dir)
    if not subnets:
        return  # dnsmasq refuses to run DHCP without a range; nothing to serve yet
    netns.run([*netns.exec_argv(ns), *want])
    log.info("%s: dnsmasq started (%d subnets)", ns, len(subnets))


def reload(state_dir: Path, nics: Sequence[Nic]) -> None:
    write_hosts(state_dir, nics)
    pid = running_pid(state_dir)
    if pid is not None:
        process.send_signal(pid, signal.SIGHUP)


def release(ns: str, nic: Nic) -> None:
    """Drop the NIC's lease now (``dhcp_release``, Debian ``dnsmasq-utils``, sends dnsmasq the
    DHCPRELEASE the guest did not): dnsmasq refuses to give a configured address to a new MAC
    while another MAC's lease on it lasts, and a terminated instance's address is reused."""
    if shutil.which("dhcp_release") is None:
        log.warning("dhcp_release is missing (dnsmasq-utils): %s stays leased", nic.private_ip)
        return
    netns.run([*netns.exec_argv(ns), "dhcp_release", BRIDGE, nic.private_ip, nic.mac.lower()],
              check=False)  # fmt: skip


def stop(state_dir: Path) -> None:
    pid = running_pid(state_dir)
    if pid is None:
        return
    process.send_signal(pid, signal.SIGTERM)

    def ours(p: int) -> bool:
        return running_pid(state_dir) == p

    if not process.wait_gone(pid, 5.0, ours):
        process.send_signal(pid, signal.SIGKILL)
        process.wait_gone(pid, 5.0, ours)
