"""STS and KMS on the same endpoint as EC2, driven by unmodified boto3 and the AWS CLI."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from typing import Any

import pytest
from api_live import ApiWorld, Creds
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from test_api_snapshots_support import wait_snapshot, wait_volume


def fresh(api: ApiWorld) -> Creds:
    """An account of its own, so listings see only this test's keys."""
    return api.kiln.account(f"kms-{secrets.token_hex(4)}")


def code(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    assert err["ResponseMetadata"]["RequestId"]
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_get_caller_identity_boto3_and_cli(api: ApiWorld) -> None:
    sts = api.kiln.client(api.owner, service="sts")
    who = sts.get_caller_identity()
    account = api.owner.account_id
    assert (who["Account"], who["UserId"], who["Arn"]) == (
        account,
        account,
        f"arn:aws:iam::{account}:root",
    )
    done = api.kiln.aws(api.owner, "get-caller-identity", service="sts")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "UserId": account,
        "Account": account,
        "Arn": f"arn:aws:iam::{account}:root",
    }
    bad = Creds(account, api.owner.access_key_id, "wrong-secret")
    assert code(api.kiln.client(bad, service="sts").get_caller_identity) == (
        "InvalidClientTokenId",
        403,
    )


def test_kms_key_lifecycle_boto3(api: ApiWorld) -> None:
    me = fresh(api)
    kms = api.kiln.client(me, service="kms")
    meta = kms.create_key(Description="disks of web", Tags=[{"TagKey": "team", "TagValue": "web"}])[
        "KeyMetadata"
    ]
    key_id = meta["KeyId"]
    assert meta["Arn"] == f"arn:aws:kms:us-east-1:{me.account_id}:key/{key_id}"
    assert (meta["KeyState"], meta["Enabled"], meta["KeyManager"], meta["Description"]) == (
        "Enabled",
        True,
        "CUSTOMER",
        "disks of web",
    )
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]

    kms.create_alias(AliasName="alias/web", TargetKeyId=key_id)
    assert kms.describe_key(KeyId="alias/web")["KeyMetadata"]["KeyId"] == key_id
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/web"] == key_id and "alias/aws/ebs" in aliases
    assert (
        code(lambda: kms.create_alias(AliasName="alias/web", TargetKeyId=key_id))[0]
        == "AlreadyExistsException"
    )
    ebs = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert ebs["KeyManager"] == "AWS"
    assert code(lambda: kms.disable_key(KeyId=ebs["KeyId"]))[0] == "UnsupportedOperationException"

    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True

    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [
        {"TagKey": "env", "TagValue": "prod"},
        {"TagKey": "team", "TagValue": "web"},
    ]

    pending = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert (pending["KeyState"], pending["PendingWindowInDays"]) == ("PendingDeletion", 7)
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion" and described["DeletionDate"]
    assert code(lambda: kms.enable_key(KeyId=key_id))[0] == "KMSInvalidStateException"
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == meta["Arn"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    kms.delete_alias(AliasName="alias/web")
    assert code(lambda: kms.describe_key(KeyId="alias/web")) == ("NotFoundException", 400)
    assert code(lambda: kms.delete_alias(AliasName="alias/web"))[0] == "NotFoundException"
    other = api.kiln.client(api.stranger, service="kms")
    assert code(lambda: other.describe_key(KeyId=meta["Arn"]))[0] == "NotFoundException"
    assert (
        code(lambda: kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=3))[0]
        == "ValidationException"
    )


def test_kms_key_lifecycle_cli(api: ApiWorld) -> None:
    me = fresh(api)

    def aws(*args: str) -> Any:
        done = api.kiln.aws(me, *args, service="kms")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    key_id = aws("create-key", "--description", "cli key")["KeyMetadata"]["KeyId"]
    aws("create-alias", "--alias-name", "alias/cli", "--target-key-id", key_id)
    assert aws("describe-key", "--key-id", "alias/cli")["KeyMetadata"]["KeyId"] == key_id
    assert key_id in [k["KeyId"] for k in aws("list-keys")["Keys"]]
    assert "alias/cli" in [a["AliasName"] for a in aws("list-aliases")["Aliases"]]
    aws("disable-key", "--key-id", key_id)
    assert aws("describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    aws("enable-key", "--key-id", key_id)
    aws("tag-resource", "--key-id", key_id, "--tags", "TagKey=a,TagValue=b")
    assert aws("list-resource-tags", "--key-id", key_id)["Tags"] == [
        {"TagKey": "a", "TagValue": "b"}
    ]
    assert (
        aws("schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")[
            "KeyState"
        ]
        == "PendingDeletion"
    )
    aws("cancel-key-deletion", "--key-id", key_id)
    aws("delete-alias", "--alias-name", "alias/cli")
    missing = api.kiln.aws(me, "describe-key", "--key-id", "alias/cli", service="kms")
    assert missing.returncode != 0 and "(NotFoundException)" in missing.stderr
    assert "Traceback" not in missing.stderr


def signed(
    api: ApiWorld, service: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """``body`` POSTed to the server, signed by botocore for ``service``."""
    request = AWSRequest(method="POST", url=api.kiln.url + "/", data=body, headers=headers)
    SigV4Auth(
        Credentials(api.owner.access_key_id, api.owner.secret_access_key), service, "us-east-1"
    ).add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(
        prepared.url, data=body, headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(raw, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


JSON_11 = {"Content-Type": "application/x-amz-json-1.1"}


def test_bad_input_is_each_protocols_error_never_a_500(api: ApiWorld) -> None:
    status, _, body = signed(api, "kms", b"{}", {**JSON_11, "X-Amz-Target": "TrentService.Nope"})
    assert (status, json.loads(body)["__type"]) == (400, "UnknownOperationException")
    status, _, body = signed(api, "kms", b"{}", {**JSON_11, "X-Amz-Target": "TrentService.Encrypt"})
    assert (status, json.loads(body)["__type"]) == (400, "UnknownOperationException")
    status, _, body = signed(
        api, "kms", b"{not json", {**JSON_11, "X-Amz-Target": "TrentService.ListKeys"}
    )
    assert (status, json.loads(body)["__type"]) == (400, "SerializationException")
    status, _, body = signed(
        api, "kms", b'{"KeyId": 7}', {**JSON_11, "X-Amz-Target": "TrentService.DescribeKey"}
    )
    assert (status, json.loads(body)["__type"]) == (400, "SerializationException")
    status, _, body = signed(
        api, "kms", b"{}", {**JSON_11, "X-Amz-Target": "TrentService.DescribeKey"}
    )
    assert (status, json.loads(body)["__type"]) == (400, "ValidationException")
    # A JSON service Kiln does not speak, and a Query one.
    status, _, body = signed(
        api,
        "dynamodb",
        b"{}",
        {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
        },
    )
    assert (status, json.loads(body)["__type"]) == (400, "UnknownOperationException")
    status, _, body = signed(
        api,
        "iam",
        b"Action=ListUsers&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400 and b"<Code>InvalidAction</Code>" in body
    status, _, body = signed(
        api,
        "sts",
        b"Action=AssumeRole&Version=2011-06-15",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400 and b"<Code>InvalidAction</Code>" in body and b"<ErrorResponse" in body


def test_disabled_key_refuses_new_encrypted_snapshots(api: ApiWorld) -> None:
    me = fresh(api)
    ec2 = api.kiln.client(me)
    kms = api.kiln.client(me, service="kms")
    key = kms.create_key()["KeyMetadata"]
    volume = ec2.create_volume(
        AvailabilityZone="us-east-1a", Size=1, Encrypted=True, KmsKeyId=key["KeyId"]
    )
    assert volume["KmsKeyId"] == key["Arn"]
    wait_volume(ec2, volume["VolumeId"])

    kms.disable_key(KeyId=key["KeyId"])
    assert code(lambda: ec2.create_snapshot(VolumeId=volume["VolumeId"])) == (
        "InvalidKMSKey.InvalidState",
        400,
    )
    assert (
        code(
            lambda: ec2.create_volume(
                AvailabilityZone="us-east-1a", Size=1, Encrypted=True, KmsKeyId=key["Arn"]
            )
        )[0]
        == "InvalidKMSKey.InvalidState"
    )
    kms.enable_key(KeyId=key["KeyId"])
    snap = ec2.create_snapshot(VolumeId=volume["VolumeId"])
    done = wait_snapshot(ec2, snap["SnapshotId"])
    assert done["State"] == "completed" and done["KmsKeyId"] == key["Arn"]

    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert (
        code(
            lambda: ec2.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=snap["SnapshotId"])
        )[0]
        == "InvalidKMSKey.InvalidState"
    )
