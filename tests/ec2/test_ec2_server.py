"""The EC2 app served by uvicorn, driven by unmodified boto3, the AWS CLI and raw HTTP.

The actions here are toys defined in this file; the real ones are tested in their own modules."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from live import live_server  # tests/ec2/live.py (pytest puts this directory on sys.path)

from kiln import errors
from kiln.aws.sigv4 import Credential
from kiln.ec2.protocol import Params
from kiln.ec2.server import RequestContext, build_ec2_app, check_dry_run
from kiln.errors import KilnError

ALICE = Credential("AKIAALICE0000000001", "alice-secret", "111122223333")
REGIONS = ("us-east-1", "eu-west-1")
CRASH_MARKER = "kiln-secret-crash-detail"
AWS_CLI = Path(sys.executable).with_name("aws")


def describe_regions(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_dry_run(params)
    wanted = params.get("RegionNames")
    names = [r for r in REGIONS if not isinstance(wanted, list) or r in wanted]
    return {
        "Regions": [
            {"RegionName": r, "Endpoint": "kiln", "OptInStatus": "opt-in-not-required"}
            for r in names
        ]
    }


def describe_images(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    """Echo each parsed filter as an image so the test sees what the server understood."""
    filters = params.get("Filters", [])
    assert isinstance(filters, list)
    return {
        "Images": [
            {
                "ImageId": f"ami-{i:017x}",
                "OwnerId": ctx.account_id,
                "Description": f"{ctx.region} {ctx.state}",
                "Tags": [{"Key": f["Name"], "Value": ",".join(f["Values"])}],
            }
            for i, f in enumerate(filters)
        ]
    }


def describe_snapshots(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    raise KilnError(errors.InvalidSnapshotNotFound, "The snapshot 'snap-1' does not exist.")


def delete_snapshot(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    raise RuntimeError(CRASH_MARKER)


def create_tags(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_dry_run(params)
    return {}


ACTIONS = {
    "DescribeRegions": describe_regions,
    "DescribeImages": describe_images,
    "DescribeSnapshots": describe_snapshots,
    "DeleteSnapshot": delete_snapshot,
    "CreateTags": create_tags,
}


def lookup(access_key_id: str) -> Credential | None:
    return ALICE if access_key_id == ALICE.access_key_id else None


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with live_server(build_ec2_app(ACTIONS, lookup, REGIONS, state="wired-state")) as base:
        yield base


def ec2(
    url: str,
    *,
    region: str = "us-east-1",
    key: str = ALICE.access_key_id,
    secret: str = ALICE.secret_access_key,
) -> Any:
    """An unmodified boto3 EC2 client (boto3 ships no type information)."""
    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def client_error(call: Callable[..., object], **kwargs: object) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value


def test_boto3_describe_regions_and_request_id(url: str) -> None:
    response = ec2(url).describe_regions()
    assert [r["RegionName"] for r in response["Regions"]] == list(REGIONS)
    meta = response["ResponseMetadata"]
    assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]
    assert meta["HTTPHeaders"]["content-type"] == "text/xml;charset=UTF-8"


def test_boto3_describe_images_sees_parsed_filters_and_context(url: str) -> None:
    images = ec2(url, region="eu-west-1").describe_images(
        Filters=[
            {"Name": "name", "Values": ["web-*", "db ?"]},
            {"Name": "tag:env", "Values": ["prod"]},
        ]
    )["Images"]
    assert [(i["Tags"][0]["Key"], i["Tags"][0]["Value"]) for i in images] == [
        ("name", "web-*,db ?"),
        ("tag:env", "prod"),
    ]
    assert {i["OwnerId"] for i in images} == {ALICE.account_id}
    assert {i["Description"] for i in images} == {"eu-west-1 wired-state"}


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"secret": "wrong-secret"}, 401),
        ({"key": "AKIANOBODY"}, 401),
        ({"region": "ap-south-9"}, 401),
    ],
)
def test_boto3_auth_failures(url: str, kwargs: dict[str, str], status: int) -> None:
    error = client_error(ec2(url, **kwargs).describe_regions)
    assert error.response["Error"]["Code"] == "AuthFailure"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if "region" in kwargs:
        assert "ap-south-9" in error.response["Error"]["Message"]


def test_boto3_clock_skew_is_auth_failure() -> None:
    def ten_minutes_ahead() -> datetime:
        return datetime.now(UTC) + timedelta(minutes=10)

    app = build_ec2_app(ACTIONS, lookup, REGIONS, state=None, clock=ten_minutes_ahead)
    with live_server(app) as skewed:
        error = client_error(ec2(skewed).describe_regions)
    assert error.response["Error"]["Code"] == "AuthFailure"
    assert error.response["Error"]["Message"].startswith("Signature expired")


def test_boto3_unknown_action_dry_run_and_handler_error(url: str) -> None:
    client = ec2(url)
    error = client_error(client.describe_volumes)
    assert error.response["Error"] == {
        "Code": "InvalidAction",
        "Message": "The action DescribeVolumes is not valid for this web service.",
    }
    error = client_error(
        client.create_tags, Resources=["ami-1"], Tags=[{"Key": "a", "Value": "b"}], DryRun=True
    )
    assert error.response["Error"]["Code"] == "DryRunOperation"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert (
        client.create_tags(Resources=["ami-1"], Tags=[{"Key": "a", "Value": "b"}])[
            "ResponseMetadata"
        ]["HTTPStatusCode"]
        == 200
    )
    error = client_error(client.describe_snapshots)
    assert error.response["Error"] == {
        "Code": "InvalidSnapshot.NotFound",
        "Message": "The snapshot 'snap-1' does not exist.",
    }


def test_boto3_handler_crash_is_internal_error_without_traceback(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kiln.aws.edge")
    error = client_error(ec2(url).delete_snapshot, SnapshotId="snap-1")
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error.response["Error"] == {
        "Code": "InternalError",
        "Message": "An internal error has occurred",
    }
    assert CRASH_MARKER not in str(error.response)
    request_id = error.response["ResponseMetadata"]["RequestId"]
    crashes = [r for r in caplog.records if r.exc_info and request_id in r.getMessage()]
    assert len(crashes) == 1 and CRASH_MARKER in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert (
        f"DeleteSnapshot RequestId={request_id} account={ALICE.account_id} status=500"
        in "\n".join(lines)
    )
    assert ALICE.secret_access_key not in caplog.text


def raw(
    full_url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        full_url,
        data=body,
        headers=dict(headers or {}),
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read()


def _lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def signed_raw(url: str, form: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
    """Sign ``form`` with botocore (as a POST body or a GET query) and send it with urllib."""
    post = method == "POST"
    request = AWSRequest(
        method=method,
        url=url + "/",
        data=form if post else None,
        params={} if post else form,
        headers={"Content-Type": "application/x-www-form-urlencoded"} if post else {},
    )
    SigV4Auth(
        Credentials(ALICE.access_key_id, ALICE.secret_access_key), "ec2", "us-east-1"
    ).add_auth(request)
    prepared = request.prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    status, _, content = raw(prepared.url, body if post else None, dict(prepared.headers))
    return status, content


def test_raw_http_health_unsigned_get_form_and_unknown_parameter(url: str) -> None:
    assert raw(url + "/healthz")[::2] == (200, b"ok")
    status, headers, body = raw(url + "/", b"Action=DescribeRegions&Version=2016-11-15")
    assert status == 401 and headers["content-type"] == "text/xml;charset=UTF-8"
    assert b"<Code>AuthFailure</Code>" in body and b"access credentials are missing" in body
    status, body = signed_raw(
        url,
        {"Action": "DescribeRegions", "Version": "2016-11-15", "RegionName.1": "eu-west-1"},
        method="GET",
    )
    assert status == 200 and b"<regionName>eu-west-1</regionName>" in body
    assert b"us-east-1" not in body
    status, body = signed_raw(
        url, {"Action": "DescribeRegions", "Version": "2016-11-15", "Colour": "red"}
    )
    assert status == 400 and b"<Code>UnknownParameter</Code>" in body
    status, body = signed_raw(url, {"Action": "DescribeRegions", "Version": "2014-01-01"})
    assert status == 400 and b"<Code>InvalidParameterValue</Code>" in body
    status, body = signed_raw(url, {"Version": "2016-11-15"})
    assert status == 400 and b"<Code>MissingParameter</Code>" in body


def test_presigned_url_from_boto3_works(url: str) -> None:
    presigned = ec2(url).generate_presigned_url(
        "describe_regions", Params={"RegionNames": ["us-east-1"]}, ExpiresIn=60, HttpMethod="GET"
    )  # boto3 signs for the model's method (POST) unless told otherwise
    status, _, body = raw(presigned)
    assert status == 200 and b"<regionName>us-east-1</regionName>" in body


def aws_cli(
    url: str, *args: str, secret: str = ALICE.secret_access_key
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ALICE.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [
            str(AWS_CLI),
            "ec2",
            *args,
            "--endpoint-url",
            url,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_aws_cli_describe_regions_and_auth_failure(url: str) -> None:
    done = aws_cli(url, "describe-regions")
    assert done.returncode == 0, done.stderr
    assert [r["RegionName"] for r in json.loads(done.stdout)["Regions"]] == list(REGIONS)
    done = aws_cli(url, "describe-images", "--filters", "Name=name,Values=web-*")
    assert json.loads(done.stdout)["Images"][0]["Tags"] == [{"Key": "name", "Value": "web-*"}]
    denied = aws_cli(url, "describe-regions", secret="wrong")
    assert denied.returncode != 0 and "(AuthFailure)" in denied.stderr
    assert "Traceback" not in denied.stderr
