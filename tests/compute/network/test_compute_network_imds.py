"""The instance metadata service: the request -> response logic, then the real HTTP server over a
socket in a namespace the test makes (IP TTL of token answers checked with nft counters)."""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import replace

import pytest
from netlab import need_root, sh

from kiln.compute.network.imds import Imds, ImdsServer, Request, Response, Tokens
from kiln.compute.network.netns import NetnsThread
from kiln.compute.network.types import METADATA_ADDRESS, InstanceMetadata, MetadataOptions

IP = "10.0.1.5"
TTL = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "x-aws-ec2-metadata-token"

META = InstanceMetadata(
    instance_id="i-0123456789abcdef0",
    image_id="ami-0fedcba9876543210",
    instance_type="t3.micro",
    availability_zone="eu-west-1b",
    region="eu-west-1",
    account_id="123456789012",
    mac="52:54:00:12:34:56",
    private_ip=IP,
    public_ip="127.0.3.4",
    subnet_id="subnet-0aa",
    vpc_id="vpc-0bb",
    subnet_cidr="10.0.1.0/24",
    vpc_cidr="10.0.0.0/16",
    security_groups=("web", "default"),
    security_group_ids=("sg-01", "sg-02"),
    launch_index=0,
    reservation_id="r-0cc",
    public_keys=(("my-key", "ssh-ed25519 AAAAC3Nza my-key"),),
    user_data=b"#!/bin/sh\necho hi\n",
    tags=(("Name", "web-1"), ("env", "test")),
    launch_time="2026-12-02T10:00:00Z",
)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def service(meta: InstanceMetadata | None, clock: Clock) -> Imds:
    return Imds(
        "vpc-0bb", lambda vpc, ip: meta if (vpc, ip) == ("vpc-0bb", IP) else None, Tokens(clock)
    )


def get(imds: Imds, path: str, **headers: str) -> Response:
    return imds.handle(Request("GET", path, {k.lower(): v for k, v in headers.items()}, IP))


def put_token(imds: Imds, ttl: str = "60", **headers: str) -> Response:
    h = {TTL: ttl, **{k.lower(): v for k, v in headers.items()}}
    return imds.handle(Request("PUT", "/latest/api/token", h, IP))


def text(resp: Response) -> str:
    assert resp.status == 200, resp
    return resp.body.decode()


def test_v1_tree_cloud_init_reads(clock: Clock) -> None:
    imds = service(META, clock)
    assert "latest" in text(get(imds, "/")).split() and "2009-04-04" in text(get(imds, "/"))
    assert text(get(imds, "/latest/")).split() == ["dynamic", "meta-data", "user-data"]
    listing = text(get(imds, "/latest/meta-data/")).split("\n")
    for name in (
        "ami-id", "ami-launch-index", "ami-manifest-path", "hostname", "instance-id",
        "instance-type", "local-hostname", "local-ipv4", "mac", "network/", "placement/",
        "public-ipv4", "public-keys/", "reservation-id", "security-groups", "services/",
    ):  # fmt: skip
        assert name in listing, name
    assert "tags/" not in listing
    assert text(get(imds, "/latest/meta-data/instance-id")) == META.instance_id
    assert text(get(imds, "/latest/meta-data")).split("\n") == listing  # no trailing slash
    assert (
        text(get(imds, "/latest/meta-data/local-hostname"))
        == "ip-10-0-1-5.eu-west-1.compute.internal"
    )
    assert text(get(imds, "/latest/meta-data/placement/availability-zone")) == "eu-west-1b"
    assert text(get(imds, "/latest/meta-data/placement/region")) == "eu-west-1"
    assert text(get(imds, "/latest/meta-data/public-keys/")) == "0=my-key"
    assert text(get(imds, "/latest/meta-data/public-keys/0/")) == "openssh-key"
    assert text(get(imds, "/latest/meta-data/public-keys/0/openssh-key")).startswith("ssh-ed25519")
    assert text(get(imds, "/latest/meta-data/security-groups")) == "web\ndefault"
    assert text(get(imds, "/latest/meta-data/services/partition")) == "aws"
    mac = f"/latest/meta-data/network/interfaces/macs/{META.mac}/"
    assert "subnet-id" in text(get(imds, mac)).split("\n")
    assert text(get(imds, mac + "vpc-ipv4-cidr-block")) == "10.0.0.0/16"
    assert text(get(imds, mac + "security-group-ids")) == "sg-01\nsg-02"
    assert text(get(imds, mac + "public-ipv4s")) == "127.0.3.4"
    assert get(imds, "/latest/meta-data/nope").status == 404
    assert get(imds, "/latest/meta-data/instance-id/extra").status == 404
    assert get(imds, "/not-a-version/meta-data/").status == 404
    # every dated version cloud-init asks for answers like latest
    for version in ("2021-03-23", "2018-09-24", "2016-09-02", "2009-04-04"):
        assert text(get(imds, f"/{version}/meta-data/instance-id")) == META.instance_id
    doc = json.loads(text(get(imds, "/latest/dynamic/instance-identity/document")))
    assert doc["instanceId"] == META.instance_id and doc["privateIp"] == IP
    assert doc["accountId"] == "123456789012" and doc["region"] == "eu-west-1"
    assert doc["pendingTime"] == "2026-12-02T10:00:00Z" and doc["version"] == "2017-09-30"
    assert get(imds, "/latest/user-data").body == META.user_data


def test_no_public_ip_no_user_data_and_tags(clock: Clock) -> None:
    bare = replace(META, public_ip=None, user_data=None, public_keys=())
    imds = service(bare, clock)
    listing = text(get(imds, "/latest/meta-data/")).split("\n")
    assert "public-ipv4" not in listing and "public-keys/" not in listing
    assert get(imds, "/latest/meta-data/public-ipv4").status == 404
    assert get(imds, "/latest/user-data").status == 404
    assert get(imds, "/latest/meta-data/tags/instance/Name").status == 404  # tags disabled
    tagged = service(
        replace(META, options=MetadataOptions(instance_metadata_tags="enabled")), clock
    )
    assert text(get(tagged, "/latest/meta-data/tags/instance/")).split() == ["Name", "env"]
    assert text(get(tagged, "/latest/meta-data/tags/instance/Name")) == "web-1"


def test_v2_tokens(clock: Clock) -> None:
    imds = service(META, clock)
    resp = put_token(imds, "21600")
    token = text(resp)
    assert resp.ip_ttl == 1 and (TTL, "21600") in [(k.lower(), v) for k, v in resp.headers]
    assert text(get(imds, "/latest/meta-data/instance-id", **{TOKEN: token})) == META.instance_id
    assert get(imds, "/latest/meta-data/instance-id", **{TOKEN: token + "x"}).status == 401
    assert get(imds, "/latest/meta-data/instance-id", **{TOKEN: "garbage"}).status == 401
    for bad in ("0", "21601", "-1", "abc", ""):
        assert put_token(imds, bad).status == 400, bad
    assert imds.handle(Request("PUT", "/latest/api/token", {}, IP)).status == 400
    assert put_token(imds, "60", **{"X-Forwarded-For": "1.2.3.4"}).status == 403
    assert imds.handle(Request("PUT", "/latest/meta-data/", {TTL: "60"}, IP)).status == 405
    assert imds.handle(Request("POST", "/latest/meta-data/", {}, IP)).status == 405
    # expiry
    short = text(put_token(imds, "5"))
    clock.now += 4
    assert get(imds, "/latest/meta-data/ami-id", **{TOKEN: short}).status == 200
    clock.now += 2
    assert get(imds, "/latest/meta-data/ami-id", **{TOKEN: short}).status == 401
    # a token is bound to its instance
    other = service(replace(META, instance_id="i-0ffffffffffffffff"), clock)
    other.tokens = imds.tokens
    assert get(other, "/latest/meta-data/ami-id", **{TOKEN: token}).status == 401
    # hop limit is the PUT answer's IP TTL
    hops = service(replace(META, options=MetadataOptions(http_put_response_hop_limit=3)), clock)
    assert put_token(hops).ip_ttl == 3


def test_required_disabled_unknown(clock: Clock) -> None:
    required = service(replace(META, options=MetadataOptions(http_tokens="required")), clock)
    assert get(required, "/latest/meta-data/instance-id").status == 401
    token = text(put_token(required))
    assert get(required, "/latest/meta-data/instance-id", **{TOKEN: token}).status == 200
    disabled = service(replace(META, options=MetadataOptions(http_endpoint="disabled")), clock)
    assert get(disabled, "/latest/meta-data/instance-id").status == 403
    assert put_token(disabled).status == 403
    nobody = service(None, clock)
    assert get(nobody, "/latest/meta-data/").status == 403


# --- the real server -----------------------------------------------------------------------
@pytest.fixture
def ns() -> Iterator[NetnsThread]:
    need_root()
    name = f"kt{secrets.token_hex(3)}-imds"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "link", "add", "d0", "type", "bridge")
        sh("ip", "-n", name, "link", "set", "d0", "up")
        sh("ip", "-n", name, "addr", "add", f"{METADATA_ADDRESS}/32", "dev", "d0")
        sh("ip", "-n", name, "addr", "add", f"{IP}/24", "dev", "d0")
        rules = (
            "table inet t { chain o { type filter hook output priority 0; policy accept;\n"
            "  tcp sport 80 ip ttl 1 counter\n  tcp sport 80 ip ttl 3 counter\n"
            "  tcp sport 80 ip ttl 64 counter\n}\n}\n"
        )
        nft = ["ip", "netns", "exec", name, "nft", "-f", "-"]
        subprocess.run(nft, input=rules, text=True, check=True)
        t = NetnsThread(name)
        try:
            yield t
        finally:
            t.close()
    finally:
        sh("ip", "netns", "del", name, check=False)


def _counters(name: str) -> dict[int, int]:
    out = sh("ip", "netns", "exec", name, "nft", "list", "table", "inet", "t").stdout
    counts = {}
    for line in out.splitlines():
        if "ip ttl" in line and "packets" in line:
            words = line.split()
            counts[int(words[words.index("ttl") + 1])] = int(words[words.index("packets") + 1])
    return counts


def test_real_server_in_a_namespace(ns: NetnsThread, clock: Clock) -> None:
    options = {"meta": replace(META, options=MetadataOptions(http_put_response_hop_limit=3))}
    imds = Imds("vpc-0bb", lambda vpc, ip: options["meta"] if ip == IP else None, Tokens())
    server = ImdsServer(imds, ns.socket())
    server.start()

    def request(method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        sock = ns.socket()
        sock.settimeout(5)
        sock.bind((IP, 0))  # the guest's source address
        sock.connect((METADATA_ADDRESS, 80))
        conn = http.client.HTTPConnection(METADATA_ADDRESS, 80, timeout=5)
        conn.sock = sock
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.getheader("Server", "").startswith("EC2ws")
        conn.close()
        return resp.status, body

    try:
        assert request("GET", "/latest/meta-data/instance-id", {}) == (
            200,
            META.instance_id.encode(),
        )
        before = _counters(ns.name)
        status, token = request("PUT", "/latest/api/token", {TTL: "30"})
        assert status == 200
        after = _counters(ns.name)
        assert after[3] > before[3]  # the token answer went out with TTL = hop limit
        assert request("GET", "/latest/meta-data/local-ipv4", {TOKEN: token.decode()}) == (
            200,
            IP.encode(),
        )
        assert request("PUT", "/latest/api/token", {TTL: "0"})[0] == 400
        options["meta"] = replace(META, options=MetadataOptions(http_tokens="required"))
        assert request("GET", "/latest/meta-data/local-ipv4", {})[0] == 401
        assert request("GET", "/latest/meta-data/local-ipv4", {TOKEN: token.decode()})[0] == 200
        # a client from another address is nobody
        sock = ns.socket()
        sock.settimeout(5)
        sock.connect((METADATA_ADDRESS, 80))  # source: 169.254.169.254 itself
        sock.sendall(b"GET /latest/meta-data/ HTTP/1.0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 403")
        sock.close()
    finally:
        server.stop()
    with pytest.raises(OSError):
        s = ns.socket()
        s.settimeout(2)
        try:
            s.connect((METADATA_ADDRESS, 80))
        finally:
            s.close()
