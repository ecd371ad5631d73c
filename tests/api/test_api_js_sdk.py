"""The AWS SDK for JavaScript v3 (Node, @aws-sdk/client-ec2, -ssm, -sts at the versions pinned in
tests/js/package.json, installed by the test command) against a live `kiln serve`: credentials
from the environment, a client per region, RegisterImage, waiters, tags, a paginator, CopyImage
into another region, EC2's errors as typed exceptions with their HTTP status, SSM parameters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from api_live import ApiWorld

JS = Path(__file__).resolve().parent.parent / "js"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node not installed"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "@aws-sdk" / "client-ec2").is_dir(),
        reason="tests/js not installed (KILN_INSTALL_TEST=1 scripts/install)",
    ),
]


def test_js_sdk_v3_drives_images_regions_errors_and_parameters(api: ApiWorld) -> None:
    creds = api.kiln.account("js-sdk")
    snap = api.kiln.snapshot(creds, api.disk)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(api.kiln.data_dir),
        "KILN_URL": api.kiln.url,
        "KILN_SNAPSHOT": snap,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    res = subprocess.run(
        ["node", str(JS / "sdk_v3.mjs")],
        capture_output=True, text=True, env=env, cwd=JS, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, f"{res.stderr[-4000:]}\n--- kiln serve ---\n{api.kiln.log()}"
    out = json.loads(res.stdout)
    assert out["account"] == creds.account_id
    assert {"us-west-2", "ap-south-1", "eu-west-1"} <= set(out["regions"])
    assert out["zones"] == ["us-west-2a", "us-west-2b", "us-west-2c"]
    assert out["t3micro"] == [[2, 1024]]
    made = out["registered"]
    assert len(made) == 6 and len(set(made)) == 6
    # five images a page (EC2's smallest MaxResults), every image once, all available after the waiter
    assert [len(p) for p in out["pages"]] == [5, 1]
    seen = [i for page in out["pages"] for i in page]
    assert sorted(seen) == sorted([i, "available"] for i in made)
    assert out["copy"]["state"] == "available" and out["copy"]["name"] == "js-sdk-copy"
    assert out["copy"]["id"] not in made
    assert out["notFound"]["name"] == "InvalidAMIID.NotFound"
    assert out["notFound"]["status"] == 400
    assert "ami-0123456789abcdef0" in out["notFound"]["message"]
    assert out["malformed"]["name"] == "InvalidAMIID.Malformed"
    assert out["dryRun"] == {
        "name": "DryRunOperation",
        "status": 412,
        "message": "Request would have succeeded, but DryRun flag is set.",
    }
    assert out["parameter"] == made[1]
    assert out["parameterMissing"]["name"] == "ParameterNotFound"
    assert out["parameterMissing"]["status"] == 400
    assert out["left"] == 0
    # what the program did is what boto3 sees
    ec2 = api.kiln.client(creds)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    west = api.kiln.client(creds, region="us-west-2")
    assert west.describe_images(Owners=["self"])["Images"] == []
