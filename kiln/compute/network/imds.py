"""The instance metadata service (IMDS) of one VPC, at 169.254.169.254:80 inside its namespace.

:func:`Imds.handle` is a pure function from a request (method, path, headers, the client's
address) to a response; :class:`ImdsServer` is a ``ThreadingHTTPServer`` over a socket made
in the namespace that feeds it. The guest is identified by its source address, which the
namespace's bridge filter guarantees is the guest's own (kiln/compute/network/nft.py).

As on EC2 (what cloud-init's Ec2 datasource and AWS images rely on):
- IMDSv1: ``GET`` without a token, unless ``http_tokens=required`` (then 401).
- IMDSv2: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1..21600,
  else 400) answers a token (sent with an IP TTL of ``http_put_response_hop_limit``); a PUT
  carrying ``X-Forwarded-For`` is refused (403), as AWS refuses tokens through a proxy. A GET
  with ``X-aws-ec2-metadata-token`` needs a valid, unexpired token of the same instance (else
  401). Tokens are HMACs under a per-process key: a server restart invalidates them, and
  clients then ask for a new one, as after an instance migration on EC2.
- ``http_endpoint=disabled``: 403 on every request (what IMDS answers; cloud-init reads a 403
  on the token PUT as "endpoint disabled").
- Every dated version (``/2009-04-04/``, ``/2021-03-23/``...) is answered like ``/latest/``.
- ``tags/instance/`` exists only with ``instance_metadata_tags=enabled`` (else 404);
  ``/latest/user-data`` is 404 when the instance has none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Union

from kiln.compute.network.types import METADATA_ADDRESS, InstanceMetadata, MetadataLookup

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-aws-ec2-metadata-token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600
PORT = 80
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: The versions the root listing shows (what EC2 lists, oldest first), then "latest".
VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "2022-09-24",
    "latest",
)

Tree = dict[str, Union["Tree", str, bytes]]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-case
    client_ip: str


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    ip_ttl: int | None = None  # the IP TTL to send this response with (token PUTs)
    content_type: str = "text/plain"


def _error(status: int) -> Response:
    reason = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
    }
    return Response(status, f"{status} - {reason.get(status, 'Error')}\n".encode())


def _partition(region: str) -> tuple[str, str]:
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def _hostname(m: InstanceMetadata) -> str:
    if m.hostname:
        return m.hostname
    domain = "ec2.internal" if m.region == "us-east-1" else f"{m.region}.compute.internal"
    return "ip-" + m.private_ip.replace(".", "-") + "." + domain


def identity_document(m: InstanceMetadata) -> dict[str, object]:
    """``/latest/dynamic/instance-identity/document`` (EC2's fields, unsigned)."""
    return {
        "accountId": m.account_id,
        "architecture": "x86_64",
        "availabilityZone": m.availability_zone,
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": m.image_id,
        "instanceId": m.instance_id,
        "instanceType": m.instance_type,
        "kernelId": None,
        "pendingTime": m.launch_time or None,
        "privateIp": m.private_ip,
        "ramdiskId": None,
        "region": m.region,
        "version": "2017-09-30",
    }


def metadata_tree(m: InstanceMetadata) -> Tree:
    """The ``meta-data/`` tree of one instance."""
    partition, domain = _partition(m.region)
    host = _hostname(m)
    iface: Tree = {
        "device-number": "0",
        "local-hostname": host,
        "local-ipv4s": m.private_ip,
        "mac": m.mac,
        "owner-id": m.account_id,
        "security-group-ids": "\n".join(m.security_group_ids),
        "security-groups": "\n".join(m.security_groups),
        "subnet-id": m.subnet_id,
        "subnet-ipv4-cidr-block": m.subnet_cidr,
        "vpc-id": m.vpc_id,
        "vpc-ipv4-cidr-block": m.vpc_cidr,
        "vpc-ipv4-cidr-blocks": m.vpc_cidr,
    }
    if m.public_ip:
        iface["public-ipv4s"] = m.public_ip
    tree: Tree = {
        "ami-id": m.image_id,
        "ami-launch-index": str(m.launch_index),
        "ami-manifest-path": "(unknown)",
        "hostname": host,
        "instance-action": "none",
        "instance-id": m.instance_id,
        "instance-life-cycle": "on-demand",
        "instance-type": m.instance_type,
        "local-hostname": host,
        "local-ipv4": m.private_ip,
        "mac": m.mac,
        "network": {"interfaces": {"macs": {m.mac: iface}}},
        "placement": {"availability-zone": m.availability_zone, "region": m.region},
        "reservation-id": m.reservation_id,
        "security-groups": "\n".join(m.security_groups),
        "services": {"domain": domain, "partition": partition},
    }
    if m.public_ip:
        tree["public-ipv4"] = m.public_ip
    if m.public_keys:
        keys: Tree = {}
        for i, (_name, key) in enumerate(m.public_keys):
            keys[str(i)] = {"openssh-key": key.strip() + "\n"}
        tree["public-keys"] = keys
    if m.options.instance_metadata_tags == "enabled":
        tree["tags"] = {"instance": {k: v for k, v in m.tags if k and "/" not in k}}
    return tree


def _listing(node: Tree, public_keys: tuple[tuple[str, str], ...] | None = None) -> bytes:
    if public_keys is not None:  # public-keys/ lists "0=keyname", as EC2 does
        return "\n".join(f"{i}={name}" for i, (name, _) in enumerate(public_keys)).encode()
    names = [k + "/" if isinstance(v, dict) else k for k, v in node.items()]
    return "\n".join(names).encode()


def _leaf(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class Tokens:
    """IMDSv2 session tokens: ``base64(instance-id:expiry).hmac`` under a per-process key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def issue(self, instance_id: str, ttl: int) -> str:
        payload = f"{instance_id}:{self._clock() + ttl:.3f}".encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + self._mac(payload)

    def valid(self, token: str, instance_id: str) -> bool:
        body, _, mac = token.strip().partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return False
        if not hmac.compare_digest(self._mac(payload), mac):
            return False
        iid, _, expiry = payload.decode(errors="replace").rpartition(":")
        try:
            return iid == instance_id and float(expiry) > self._clock()
        except ValueError:
            return False


@dataclass
class Imds:
    """The metadata service of one VPC: ``lookup(vpc_id, client_ip)`` names the instance."""

    vpc_id: str
    lookup: MetadataLookup
    tokens: Tokens = field(default_factory=Tokens)

    def handle(self, req: Request) -> Response:
        try:
            meta = self.lookup(self.vpc_id, req.client_ip)
        except Exception:
            log.exception("metadata lookup for %s in %s failed", req.client_ip, self.vpc_id)
            return _error(500)
        if meta is None or meta.options.http_endpoint != "enabled":
            return _error(403)
        path = req.path.split("?", 1)[0]
        if req.method == "PUT":
            if path.rstrip("/") != "/latest/api/token":
                return _error(405)
            return self._token(req, meta)
        if req.method not in ("GET", "HEAD"):
            return _error(405)
        token = req.headers.get(TOKEN_HEADER)
        if token is not None:
            if not self.tokens.valid(token, meta.instance_id):
                return _error(401)
        elif meta.options.http_tokens == "required":
            return _error(401)
        return self._get(path, meta)

    def _token(self, req: Request, meta: InstanceMetadata) -> Response:
        if "x-forwarded-for" in req.headers:
            return _error(403)
        raw = req.headers.get(TTL_HEADER, "").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_TTL:
            return _error(400)
        ttl = int(raw)
        return Response(
            200,
            self.tokens.issue(meta.instance_id, ttl).encode(),
            headers=((TTL_HEADER, str(ttl)),),
            ip_ttl=max(1, min(255, meta.options.http_put_response_hop_limit)),
        )

    def _get(self, path: str, meta: InstanceMetadata) -> Response:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return Response(200, "\n".join(VERSIONS).encode())
        version, rest = parts[0], parts[1:]
        if version != "latest" and not _DATED.match(version) and version != "1.0":
            return _error(404)
        if not rest:
            names = ["dynamic", "meta-data"] + (["user-data"] if meta.user_data else [])
            return Response(200, "\n".join(names).encode())
        head, rest = rest[0], rest[1:]
        if head == "user-data" and not rest:
            return Response(200, meta.user_data) if meta.user_data else _error(404)
        if head == "dynamic":
            doc = json.dumps(identity_document(meta), indent=2).encode()
            dynamic: Tree = {"instance-identity": {"document": doc}}
            return self._walk(dynamic, rest, None)
        if head == "meta-data":
            return self._walk(metadata_tree(meta), rest, meta.public_keys)
        if head == "api" and rest == ["token"]:
            return _error(405)
        return _error(404)

    @staticmethod
    def _walk(
        node: Tree, parts: list[str], public_keys: tuple[tuple[str, str], ...] | None
    ) -> Response:
        cur: Tree | str | bytes = node
        for p in parts:
            if not isinstance(cur, dict) or p not in cur:
                return _error(404)
            cur = cur[p]
        if isinstance(cur, dict):
            return Response(200, _listing(cur, public_keys if parts == ["public-keys"] else None))
        return Response(200, _leaf(cur))


class _Handler(BaseHTTPRequestHandler):
    server: ImdsServer
    server_version = "EC2ws"
    sys_version = ""
    timeout = 10

    def _serve(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = headers.get("content-length", "0").strip()
        if length.isdigit() and 0 < int(length) <= 65536:
            self.rfile.read(int(length))  # a body is ignored, but read off the connection
        req = Request(self.command, self.path, headers, self.client_address[0])
        resp = self.server.imds.handle(req)
        if resp.ip_ttl is not None:
            self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, resp.ip_ttl)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        log.debug("imds %s: " + format, self.client_address[0], *args)


class ImdsServer(ThreadingHTTPServer):
    """An HTTP server for :class:`Imds` on ``sock`` (a socket made in the VPC's namespace,
    not yet bound); ``start`` binds it to ``address`` and serves in a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, imds: Imds, sock: socket.socket, address: str = METADATA_ADDRESS) -> None:
        self.imds = imds
        super().__init__((address, PORT), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self._thread: threading.Thread | None = None

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the address's name (a DNS query): skip that.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = METADATA_ADDRESS, PORT

    def start(self) -> None:
        self.server_bind()
        self.server_activate()
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"imds-{self.imds.vpc_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()
