"""Public forwards: TCP listeners at an instance's host address (127.x.y.z) relaying into its VPC.

One asyncio loop in one background thread (host namespace) serves every listener and
connection. For each accepted connection whose peer address an ingress rule allows, a socket
made inside the VPC's namespace (:class:`kiln.compute.network.netns.NetnsThread`) connects to
the guest's private address at the same port, and bytes are relayed both ways; each direction's
end (EOF) is passed on as a half-close (``shutdown(SHUT_WR)``), so request/response protocols
that close their sending side work; an error in either direction ends both. The guest sees the
connection come from its subnet's router address.

Changing a NIC's listeners (``set``) opens and closes listeners at once; connections already
relayed stay up (as EC2 keeps tracked connections when a rule is revoked) until ``remove``
(the NIC is unplugged) or ``close``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kiln.compute.network.netns import NetnsThread

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
BUFFER = 65536
BACKLOG = 128

T = TypeVar("T")
Nets = tuple[ipaddress.IPv4Network, ...]


@dataclass
class _Listener:
    port: int
    sock: socket.socket
    nets: Nets
    task: asyncio.Task[None] | None = None


@dataclass
class _Forward:
    ns: NetnsThread
    listen_ip: str
    target_ip: str
    listeners: dict[int, _Listener] = field(default_factory=dict)
    conns: set[asyncio.Task[None]] = field(default_factory=set)


class Forwarder:
    """The public forwards of every plugged NIC, keyed by instance id. Thread-safe."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._forwards: dict[str, _Forward] = {}
        self._thread = threading.Thread(target=self._run, name="kiln-forwards", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # --- public, from any thread ------------------------------------------------------------
    def set(
        self,
        key: str,
        ns: NetnsThread,
        listen_ip: str,
        target_ip: str,
        ports: Mapping[int, Sequence[ipaddress.IPv4Network]],
    ) -> list[int]:
        """Make ``key``'s listeners exactly ``ports`` (port -> the peer networks allowed);
        returns the ports that could not be opened (address in use...)."""
        failed: list[int] = self._call(self._set(key, ns, listen_ip, target_ip, dict(ports)))
        return failed

    def remove(self, key: str) -> None:
        """Close ``key``'s listeners and its relayed connections."""
        self._call(self._remove(key))

    def ports(self, key: str) -> list[int]:
        """The ports listening for ``key`` now."""
        f = self._forwards.get(key)
        return sorted(f.listeners) if f else []

    def connections(self, key: str) -> int:
        f = self._forwards.get(key)
        return len(f.conns) if f else 0

    def close(self) -> None:
        if self._loop.is_closed():
            return
        for key in list(self._forwards):
            self.remove(key)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # --- in the loop ------------------------------------------------------------------------
    async def _set(
        self,
        key: str,
        ns: NetnsThread,
        listen_ip: str,
        target_ip: str,
        ports: dict[int, Sequence[ipaddress.IPv4Network]],
    ) -> list[int]:
        f = self._forwards.get(key)
        if f is not None and (f.ns is not ns or f.listen_ip != listen_ip):
            await self._remove(key)
            f = None
        if f is None:
            f = self._forwards[key] = _Forward(ns, listen_ip, target_ip)
        f.target_ip = target_ip
        for port in [p for p in f.listeners if p not in ports]:
            self._close_listener(f.listeners.pop(port))
        failed = []
        for port, nets in sorted(ports.items()):
            if port in f.listeners:
                f.listeners[port].nets = tuple(nets)
                continue
            try:
                sock = self._listen(listen_ip, port)
            except OSError as e:
                log.warning("%s: cannot forward %s:%d: %s", key, listen_ip, port, e)
                failed.append(port)
                continue
            lst = f.listeners[port] = _Listener(port, sock, tuple(nets))
            lst.task = self._loop.create_task(self._accept(f, lst))
        return failed

    @staticmethod
    def _listen(ip: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    @staticmethod
    def _close_listener(lst: _Listener) -> None:
        if lst.task is not None:
            lst.task.cancel()
        lst.sock.close()

    async def _remove(self, key: str) -> None:
        f = self._forwards.pop(key, None)
        if f is None:
            return
        for lst in f.listeners.values():
            self._close_listener(lst)
        for t in list(f.conns):
            t.cancel()
        if f.conns:
            await asyncio.gather(*f.conns, return_exceptions=True)

    async def _accept(self, f: _Forward, lst: _Listener) -> None:
        while True:
            try:
                conn, peer = await self._loop.sock_accept(lst.sock)
            except asyncio.CancelledError:
                raise
            except OSError as e:
                if lst.sock.fileno() == -1:
                    return
                log.warning("accept on %s:%d: %s", f.listen_ip, lst.port, e)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            addr = ipaddress.ip_address(peer[0])
            if not any(addr in n for n in lst.nets):
                _reset(conn)
                continue
            task = self._loop.create_task(self._relay(f, lst.port, conn))
            f.conns.add(task)
            task.add_done_callback(f.conns.discard)
            task.add_done_callback(functools.partial(_close_after, conn))

    async def _relay(self, f: _Forward, port: int, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            made = f.ns.submit(socket.socket)
            try:
                upstream = await asyncio.wrap_future(made)
            except asyncio.CancelledError:
                made.add_done_callback(_close_result)
                raise
            upstream.setblocking(False)
            try:
                await asyncio.wait_for(
                    self._loop.sock_connect(upstream, (f.target_ip, port)), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                _reset(client)
                return
            for s in (client, upstream):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            await asyncio.gather(self._pipe(client, upstream), self._pipe(upstream, client))
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    async def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := await self._loop.sock_recv(src, BUFFER):
                await self._loop.sock_sendall(dst, data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            for s in (src, dst):  # wake the other direction: its recv then sees EOF
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _close_after(sock: socket.socket, _task: asyncio.Task[None]) -> None:
    sock.close()  # also when the relay task was cancelled before it ever ran


def _close_result(made: Future[socket.socket]) -> None:
    if not made.cancelled() and made.exception() is None:
        made.result().close()


def _reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0): the client sees its connection refused/reset."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
