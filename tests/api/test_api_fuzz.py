"""Every action, every input, hostile values: never a 5xx, never a traceback (issue 8).

For each action of ``ACTIONS``, requests that botocore's own serializer makes from random
well-shaped input (so the handlers and rules run, not only the parser), then the same requests
with one input at a time replaced by a hostile value: too long, too large, the wrong type, a
NUL, invalid UTF-8, a structure given a value. Signed with SigV4 like any client, sent raw so
that bytes boto3 would never send reach the server. A dedicated server, so nothing the fuzzing
creates is seen by other tests.
"""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from api_live import Creds, LiveKiln, make_disk
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer
from shape_values import random_value

from kiln.ec2.actions import ACTIONS
from kiln.ec2.shapes import service_model

HOSTILE: tuple[str | bytes, ...] = (
    "A" * 100_000,  # too long for any member
    "9" * 40,  # beyond every integer type
    "-99999999999",  # beyond 32 bits, negative
    "not-a-number",  # the wrong type for numbers, booleans, timestamps, blobs
    "x\x00y",  # NUL
    b"\xff\xfe",  # invalid UTF-8
    "",  # empty
    "1e999",  # an infinite float
    "../../../../etc/passwd",  # a path where an id is expected
)
ALLOWED_5XX = {"InsufficientInstanceCapacity"}  # EC2's own 500 for "no capacity"


#: Real ids put where the model names them, so that requests get past "not found" into the
#: rules (not for actions that would remove them, or RunInstances, which would boot VMs).
KEEP_IDS_OUT = {"DeregisterImage", "DeleteSnapshot", "DeleteVolume", "RunInstances"}


@dataclass(frozen=True)
class Target:
    kiln: LiveKiln
    creds: Creds
    ids: dict[str, str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("fuzz")
    kiln = LiveKiln(data, None, serve_args=())
    kiln.start()
    try:
        creds = kiln.account("fuzzer")
        snap = kiln.snapshot(creds, make_disk(data / "fuzz.raw"))
        image = kiln.client(creds).register_image(
            Name="fuzz-target",
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        )["ImageId"]
        ids = {
            "ImageId": image,
            "SourceImageId": image,
            "SnapshotId": snap,
            "SourceSnapshotId": snap,
            "SourceRegion": "us-east-1",
        }
        yield Target(kiln, creds, ids)
    finally:
        kiln.stop()


def _encode(form: list[tuple[str, str | bytes]]) -> bytes:
    parts = []
    for key, value in form:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        parts.append(f"{quote(key, safe='')}={quote(raw, safe='')}")
    return "&".join(parts).encode("ascii")


def _send(kiln: LiveKiln, creds: Creds, body: bytes) -> tuple[int, str]:
    req = AWSRequest(
        method="POST",
        url=kiln.url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(
        Credentials(creds.access_key_id, creds.secret_access_key), "ec2", "us-east-1"
    ).add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(
        prepared.url, data=body, method="POST", headers=dict(prepared.headers.items())
    )
    try:
        with urllib.request.urlopen(http_req, timeout=60) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class _EveryMember(random.Random):
    """Makes ``random_value`` include every optional member (down to its depth limit)."""

    def random(self) -> float:
        return 0.0


def _leaf(key: str) -> str:
    return next((s for s in reversed(key.split(".")) if not s.isdigit()), key)


def _forms(
    action: str, rng: random.Random, ids: dict[str, str]
) -> Iterator[list[tuple[str, str | bytes]]]:
    """Well-shaped requests for ``action`` (one with every member, then random ones), each
    followed by copies with one input made hostile (every input of the full one, a sample of
    the random ones')."""
    op = service_model().operation_model(action)
    serializer = create_serializer("ec2", include_validation=False)
    full = _EveryMember(rng.random())
    for n in range(4):
        gen = full if n == 0 else rng
        params = random_value(op.input_shape, gen) if op.input_shape else {}
        params.pop("DryRun", None)
        body = serializer.serialize_to_request(params, op)["body"]
        form = [(k, str(v)) for k, v in body.items()]
        if action not in KEEP_IDS_OUT:
            form = [(k, ids.get(_leaf(k), v)) for k, v in form]
        form = [(k, f"fuzz-{rng.getrandbits(48):x}" if k == "Name" else v) for k, v in form]
        yield list(form)
        names = [k for k, _ in form if k not in ("Action", "Version")]
        for name in rng.sample(names, min(len(names), 12)) if n else names:
            for value in HOSTILE:
                yield [(k, value if k == name else v) for k, v in form]
            parent = name.rsplit(".", 1)[0]
            if parent != name:  # a value where a structure or list is expected
                yield [*form, (parent, "x")]


@pytest.mark.slow
def test_every_action_every_input_hostile_values(target: Target) -> None:
    kiln, creds = target.kiln, target.creds
    rng = random.Random(8)
    sent, failures = 0, []
    for action in sorted(ACTIONS):
        for form in _forms(action, rng, target.ids):
            status, text = _send(kiln, creds, _encode(form))
            sent += 1
            if status >= 500 and not any(f"<Code>{c}</Code>" in text for c in ALLOWED_5XX):
                failures.append((action, [(k, v[:80]) for k, v in form], status, text[:300]))
    log = (kiln.data_dir / "serve.log").read_text(errors="replace")
    assert not failures, failures[:5]
    assert "Traceback" not in log and "InternalError" not in log, log[-3000:]
    assert sent > 2000, sent
