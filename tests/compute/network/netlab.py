"""Helpers for the host network tests: a NetnsNetworkHost with a prefix of the test's own (so
it never touches another server's namespaces), and "pseudo guests": a network namespace whose
``eth0`` is a veth pair standing where QEMU's tap would be, so DHCP, filtering, forwards and the
metadata service are exercised without booting a VM.

Everything runs inside namespaces the tests create; the host's own namespace only ever sees
127.0.0.0/8 (the public forwards).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiln.compute.network import netns
from kiln.compute.network.host import NetnsNetworkHost, tap_name
from kiln.compute.network.netns import NetnsThread
from kiln.compute.network.types import InstanceMetadata, Nic

UDHCPC_SCRIPT = Path(__file__).resolve().parents[3] / "kiln/bake/files/udhcpc.script"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("host networking needs root")
    reason = NetnsNetworkHost.probe()
    if reason or shutil.which("busybox") is None:
        pytest.skip(f"host networking unavailable: {reason or 'no busybox'}")


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv}: {proc.returncode} {proc.stderr}{proc.stdout}")
    return proc


@dataclass
class Guest:
    """A namespace posing as a guest behind a NIC's tap."""

    ns: str
    nic: Nic
    scratch: Path
    _thread: NetnsThread | None = None
    _servers: list[socket.socket] = field(default_factory=list)

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        return sh("ip", "netns", "exec", self.ns, *argv, check=check, timeout=timeout).stdout

    def dhcp(self) -> str:
        """Run busybox udhcpc with the micro guest's script; the address eth0 got.

        A pseudo guest shares the host's files: the script's resolv.conf is redirected into
        ``scratch`` so the host's own /etc/resolv.conf is never touched."""
        scratch = self.scratch
        script = scratch / f"udhcpc-{self.ns}.script"
        script.write_text(
            UDHCPC_SCRIPT.read_text().replace("/etc/resolv.conf", str(scratch / "resolv.conf"))
        )
        script.chmod(0o755)
        self.run(
            "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "5", "-T", "1",
            "-s", str(script), check=False,
        )  # fmt: skip
        out = self.run("ip", "-4", "-o", "addr", "show", "dev", "eth0")
        return out.split("inet ", 1)[1].split()[0] if "inet " in out else ""

    def thread(self) -> NetnsThread:
        if self._thread is None:
            self._thread = NetnsThread(self.ns)
        return self._thread

    def connect(self, ip: str, port: int, timeout: float = 1.5) -> socket.socket:
        """A TCP connection made from inside the guest (raises OSError when filtered)."""
        s = self.thread().socket()
        s.settimeout(timeout)
        try:
            s.connect((ip, port))
        except BaseException:
            s.close()
            raise
        return s

    def can_reach(self, ip: str, port: int) -> bool:
        try:
            self.connect(ip, port).close()
        except OSError:
            return False
        return True

    def serve(self, port: int, handler: Callable[[socket.socket], None] | None = None) -> None:
        """A TCP server on 0.0.0.0:port in the guest: by default it reads to EOF, then answers
        ``got N`` and closes (so a relay must pass half-closes)."""
        lst = self.thread().socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("0.0.0.0", port))
        lst.listen(64)
        self._servers.append(lst)

        def default(conn: socket.socket) -> None:
            n = 0
            while data := conn.recv(65536):
                n += len(data)
            conn.sendall(f"got {n}".encode())

        def loop() -> None:
            while True:
                try:
                    conn, _ = lst.accept()
                except OSError:
                    return
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

        def serve_one(conn: socket.socket) -> None:
            with conn:
                try:
                    (handler or default)(conn)
                except OSError:
                    pass

        threading.Thread(target=loop, daemon=True).start()

    def close(self) -> None:
        for s in self._servers:
            s.close()
        if self._thread is not None:
            self._thread.close()
        sh("ip", "netns", "del", self.ns, check=False)


class Lab:
    """A NetnsNetworkHost and its pseudo guests; everything removed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tag = secrets.token_hex(3)
        self.prefix = f"kt{self.tag}-"
        self.state_dir = tmp / "network"
        self.scratch = tmp
        self.meta: dict[tuple[str, str], InstanceMetadata] = {}
        self.host = self.new_host()
        self.guests: list[Guest] = []
        self.hosts = [self.host]

    def lookup(self, vpc_id: str, ip: str) -> InstanceMetadata | None:
        return self.meta.get((vpc_id, ip))

    def new_host(self) -> NetnsNetworkHost:
        """Another host object on the same state (a ``kiln serve`` restart)."""
        h = NetnsNetworkHost(self.state_dir, self.lookup, prefix=self.prefix)
        if hasattr(self, "hosts"):
            self.hosts.append(h)
        return h

    def vpc_id(self, name: str) -> str:
        return f"vpc-{self.tag}{name}"

    def guest(self, nic: Nic, host: NetnsNetworkHost | None = None) -> Guest:
        """Plug ``nic`` and put a pseudo guest behind it (veth in place of the tap)."""
        h = host or self.host
        h.plug(nic, "/nonexistent")
        vpc_ns = h.namespace(nic.vpc_id)
        tap = tap_name(nic.instance_id)
        g = Guest(f"kt{self.tag}-g-{nic.instance_id}", nic, self.scratch)
        self.guests.append(g)
        sh("ip", "netns", "add", g.ns)
        sh("ip", "-n", vpc_ns, "link", "del", tap)
        sh("ip", "-n", vpc_ns, "link", "add", tap, "type", "veth", "peer", "eth0", "netns", g.ns)
        sh("ip", "-n", vpc_ns, "link", "set", tap, "master", "br0", "up")
        sh("ip", "-n", g.ns, "link", "set", "eth0", "address", nic.mac, "up")
        sh("ip", "-n", g.ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", g.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        return g

    def close(self) -> None:
        for g in self.guests:
            g.close()
        for h in self.hosts:
            h.close()
        for vpc_id in netns.vpc_namespaces(self.prefix):
            self.hosts[-1].delete_vpc(vpc_id)
        self.hosts[-1].close()
