"""S3 on the same endpoint as EC2, driven by unmodified boto3 and the AWS CLI against a live
`kiln serve`: buckets, objects, ranges, listings, multipart uploads, strangers, streamed
(aws-chunked) bodies, and AWS's VM Import flow (`aws s3 cp` -> import-image -> export-image ->
`aws s3 cp` back)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
from api_live import ApiWorld, Creds
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

MIB = 1024 * 1024
US, EU = "us-east-1", "eu-west-1"


def fresh(api: ApiWorld, name: str = "s3") -> Creds:
    return api.kiln.account(f"{name}-{secrets.token_hex(4)}")


def bucket_name(prefix: str = "bkt") -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def error(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(MIB):
            digest.update(piece)
    return digest.hexdigest()


def test_bucket_lifecycle_boto3(api: ApiWorld) -> None:
    me, other = fresh(api), fresh(api, "other")
    s3, s3_eu = api.kiln.client(me, US, "s3"), api.kiln.client(me, EU, "s3")
    name, eu_name = bucket_name(), bucket_name("eu")
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    s3.create_bucket(Bucket=name)  # us-east-1: your own bucket again is a 200, as on S3
    s3_eu.create_bucket(Bucket=eu_name, CreateBucketConfiguration={"LocationConstraint": EU})
    listed = s3.list_buckets()
    assert [b["Name"] for b in listed["Buckets"]] == sorted([name, eu_name])
    assert listed["Owner"]["ID"] == me.account_id
    assert s3.head_bucket(Bucket=eu_name)["BucketRegion"] == EU
    assert s3.get_bucket_location(Bucket=eu_name)["LocationConstraint"] == EU
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") is None

    assert error(
        lambda: s3_eu.create_bucket(
            Bucket=eu_name, CreateBucketConfiguration={"LocationConstraint": EU}
        )
    ) == ("BucketAlreadyOwnedByYou", 409)
    theirs = api.kiln.client(other, US, "s3")
    assert error(lambda: theirs.create_bucket(Bucket=name)) == ("BucketAlreadyExists", 409)
    assert error(lambda: s3_eu.create_bucket(Bucket=bucket_name())) == (
        "IllegalLocationConstraintException",
        400,
    )
    assert error(
        lambda: s3.create_bucket(
            Bucket=bucket_name(), CreateBucketConfiguration={"LocationConstraint": EU}
        )
    ) == ("IllegalLocationConstraintException", 400)
    assert error(lambda: s3.create_bucket(Bucket="No_Such")) == ("InvalidBucketName", 400)
    assert error(lambda: s3.create_bucket(Bucket="ab")) == ("InvalidBucketName", 400)

    s3.put_object(Bucket=name, Key="x", Body=b"x")
    assert error(lambda: s3.delete_bucket(Bucket=name)) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="x")
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(lambda: s3.head_bucket(Bucket=name)) == ("404", 404)
    assert error(lambda: s3.list_objects_v2(Bucket=name)) == ("NoSuchBucket", 404)
    assert error(lambda: s3.delete_bucket(Bucket=name)) == ("NoSuchBucket", 404)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [eu_name]
    # The name is free again, for anyone.
    theirs.create_bucket(Bucket=name)
    assert [b["Name"] for b in theirs.list_buckets()["Buckets"]] == [name]


def test_objects_ranges_listing_boto3(api: ApiWorld) -> None:
    me = fresh(api)
    s3 = api.kiln.client(me, US, "s3")
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    data = secrets.token_bytes(2 * MIB + 17)
    put = s3.put_object(
        Bucket=name,
        Key="disks/a b+c%ü.raw",
        Body=data,
        ContentType="application/x-raw",
        Metadata={"Team": "ops"},
        CacheControl="no-cache",
    )
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    key = "disks/a b+c%ü.raw"
    got = s3.get_object(Bucket=name, Key=key)
    assert got["Body"].read() == data
    assert (got["ContentType"], got["ContentLength"], got["Metadata"], got["CacheControl"]) == (
        "application/x-raw",
        len(data),
        {"team": "ops"},
        "no-cache",
    )
    part = s3.get_object(Bucket=name, Key=key, Range="bytes=1000-1999")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert part["Body"].read() == data[1000:2000]
    tail = s3.get_object(Bucket=name, Key=key, Range="bytes=-10")
    assert tail["Body"].read() == data[-10:] and tail["ContentLength"] == 10
    rest = s3.get_object(Bucket=name, Key=key, Range=f"bytes={len(data) - 5}-")
    assert rest["Body"].read() == data[-5:]
    assert s3.get_object(Bucket=name, Key=key, Range="bytes=9-3")["ContentLength"] == len(data)
    assert error(lambda: s3.get_object(Bucket=name, Key=key, Range=f"bytes={len(data)}-")) == (
        "InvalidRange",
        416,
    )
    head = s3.head_object(Bucket=name, Key=key)
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    assert s3.get_object(Bucket=name, Key=key, IfMatch=put["ETag"])["ContentLength"] == len(data)
    assert error(lambda: s3.get_object(Bucket=name, Key=key, IfMatch='"0000"')) == (
        "PreconditionFailed",
        412,
    )
    assert error(lambda: s3.get_object(Bucket=name, Key=key, IfNoneMatch=put["ETag"])) == (
        "304",
        304,
    )
    assert error(lambda: s3.get_object(Bucket=name, Key="disks/missing")) == ("NoSuchKey", 404)
    assert error(lambda: s3.head_object(Bucket=name, Key="disks/missing")) == ("404", 404)
    assert s3.put_object(Bucket=name, Key="empty", Body=b"")["ETag"] == (
        f'"{hashlib.md5(b"").hexdigest()}"'
    )
    assert s3.get_object(Bucket=name, Key="empty")["Body"].read() == b""

    keys = ["a/1", "a/2", "a/b/3", "a-c", "b", "c/x/y"]
    for k in keys:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    everything = sorted([*keys, key, "empty"], key=lambda k: k.encode())
    listed = s3.list_objects_v2(Bucket=name)
    assert [o["Key"] for o in listed["Contents"]] == everything
    assert listed["KeyCount"] == len(everything) and not listed["IsTruncated"]
    top = s3.list_objects_v2(Bucket=name, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a-c", "b", "empty"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "c/", "disks/"]
    under_a = s3.list_objects_v2(Bucket=name, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in under_a["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in under_a["CommonPrefixes"]] == ["a/b/"]
    pages, token, seen = 0, None, []
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=name, MaxKeys=3, **kw)
        seen += [o["Key"] for o in page.get("Contents", [])]
        pages += 1
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == everything and pages == 3
    paginator = s3.get_paginator("list_objects_v2")
    prefixes = [
        p["Prefix"]
        for page in paginator.paginate(Bucket=name, Delimiter="/", PaginationConfig={"PageSize": 2})
        for p in page.get("CommonPrefixes", [])
    ]
    assert prefixes == ["a/", "c/", "disks/"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name, StartAfter="b")["Contents"]] == [
        k for k in everything if k.encode() > b"b"
    ]
    assert [o["Key"] for o in s3.list_objects(Bucket=name, Prefix="a/")["Contents"]] == [
        "a/1",
        "a/2",
        "a/b/3",
    ]
    assert error(lambda: s3.list_objects_v2(Bucket=name, ContinuationToken="bogus")) == (
        "InvalidArgument",
        400,
    )

    s3.delete_object(Bucket=name, Key="a/b/3")
    s3.delete_object(Bucket=name, Key="a/b/3")  # a missing key: still 204
    gone = s3.delete_objects(
        Bucket=name, Delete={"Objects": [{"Key": "a/1"}, {"Key": "a/2"}, {"Key": "nope"}]}
    )
    assert sorted(d["Key"] for d in gone["Deleted"]) == ["a/1", "a/2", "nope"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name, Prefix="a")["Contents"]] == ["a-c"]


def test_keys_that_cannot_be_files_are_refused(api: ApiWorld) -> None:
    me = fresh(api)
    s3 = api.kiln.client(me, US, "s3")
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="dir/file", Body=b"1")
    for key in ("a//b", "dir/", "./x", "x/../y", "dir/file/under", "dir"):
        assert error(lambda key=key: s3.put_object(Bucket=name, Key=key, Body=b"2")) == (
            "InvalidArgument",
            400,
        ), key
    assert error(lambda: s3.put_object(Bucket=name, Key="k" * 1025, Body=b"")) == (
        "KeyTooLongError",
        400,
    )
    assert s3.get_object(Bucket=name, Key="dir/file")["Body"].read() == b"1"


def test_a_stranger_is_refused(api: ApiWorld) -> None:
    me, stranger = fresh(api), fresh(api, "stranger")
    mine, theirs = api.kiln.client(me, US, "s3"), api.kiln.client(stranger, US, "s3")
    name = bucket_name()
    mine.create_bucket(Bucket=name)
    mine.put_object(Bucket=name, Key="secret", Body=b"mine")
    upload = mine.create_multipart_upload(Bucket=name, Key="big")["UploadId"]
    denied = ("AccessDenied", 403)
    assert error(lambda: theirs.get_object(Bucket=name, Key="secret")) == denied
    assert error(lambda: theirs.get_object(Bucket=name, Key="absent")) == denied
    assert error(lambda: theirs.head_object(Bucket=name, Key="secret")) == ("403", 403)
    assert error(lambda: theirs.head_bucket(Bucket=name)) == ("403", 403)
    assert error(lambda: theirs.put_object(Bucket=name, Key="secret", Body=b"x")) == denied
    assert error(lambda: theirs.list_objects_v2(Bucket=name)) == denied
    assert error(lambda: theirs.delete_object(Bucket=name, Key="secret")) == denied
    assert error(lambda: theirs.delete_bucket(Bucket=name)) == denied
    assert (
        error(
            lambda: theirs.upload_part(
                Bucket=name, Key="big", UploadId=upload, PartNumber=1, Body=b"x"
            )
        )
        == denied
    )
    assert (
        error(lambda: theirs.abort_multipart_upload(Bucket=name, Key="big", UploadId=upload))
        == denied
    )
    assert error(
        lambda: mine.head_bucket(Bucket=name, ExpectedBucketOwner=stranger.account_id)
    ) == ("403", 403)
    assert name not in [b["Name"] for b in theirs.list_buckets()["Buckets"]]
    assert mine.get_object(Bucket=name, Key="secret")["Body"].read() == b"mine"
    wrong = Creds(me.account_id, me.access_key_id, "not-the-secret")
    assert error(lambda: api.kiln.client(wrong, US, "s3").list_buckets()) == (
        "SignatureDoesNotMatch",
        403,
    )


def test_multipart_rules_boto3(api: ApiWorld) -> None:
    me = fresh(api)
    s3 = api.kiln.client(me, US, "s3")
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    first, second = secrets.token_bytes(5 * MIB), secrets.token_bytes(1000)
    up = s3.create_multipart_upload(Bucket=name, Key="m/obj", ContentType="application/x-qemu")
    uid = up["UploadId"]
    e1 = s3.upload_part(Bucket=name, Key="m/obj", UploadId=uid, PartNumber=1, Body=first)["ETag"]
    e2 = s3.upload_part(Bucket=name, Key="m/obj", UploadId=uid, PartNumber=2, Body=second)["ETag"]
    assert e2 == f'"{hashlib.md5(second).hexdigest()}"'
    parts = s3.list_parts(Bucket=name, Key="m/obj", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, e1, len(first)),
        (2, e2, len(second)),
    ]
    uploads = s3.list_multipart_uploads(Bucket=name)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("m/obj", uid)]

    def complete(*given: tuple[int, str]) -> Any:
        return s3.complete_multipart_upload(
            Bucket=name,
            Key="m/obj",
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": t} for n, t in given]},
        )

    assert error(lambda: complete((2, e2), (1, e1))) == ("InvalidPartOrder", 400)
    assert error(lambda: complete((1, e1), (3, e2))) == ("InvalidPart", 400)
    assert error(lambda: complete((1, e2), (2, e2))) == ("InvalidPart", 400)
    assert error(lambda: complete((2, e2), (3, e2))) == ("InvalidPart", 400)
    small = s3.upload_part(Bucket=name, Key="m/obj", UploadId=uid, PartNumber=3, Body=b"tiny")
    assert error(lambda: complete((1, e1), (3, small["ETag"]), (2, e2))) == (
        "InvalidPartOrder",
        400,
    )
    assert error(lambda: complete((2, e2), (3, small["ETag"]))) == ("EntityTooSmall", 400)
    assert error(
        lambda: s3.upload_part(Bucket=name, Key="m/obj", UploadId=uid, PartNumber=0, Body=b"")
    ) == ("InvalidArgument", 400)
    done = complete((1, e1), (2, e2))
    md5s = hashlib.md5(bytes.fromhex(e1.strip('"')) + bytes.fromhex(e2.strip('"'))).hexdigest()
    assert done["ETag"] == f'"{md5s}-2"'
    got = s3.get_object(Bucket=name, Key="m/obj")
    assert got["Body"].read() == first + second
    assert got["ETag"] == done["ETag"] and got["ContentType"] == "application/x-qemu"
    assert error(lambda: s3.list_parts(Bucket=name, Key="m/obj", UploadId=uid)) == (
        "NoSuchUpload",
        404,
    )
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=name)

    other = s3.create_multipart_upload(Bucket=name, Key="m/aborted")["UploadId"]
    s3.upload_part(Bucket=name, Key="m/aborted", UploadId=other, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=name, Key="m/aborted", UploadId=other)
    assert error(
        lambda: s3.upload_part(Bucket=name, Key="m/aborted", UploadId=other, PartNumber=1, Body=b"")
    ) == ("NoSuchUpload", 404)
    assert error(lambda: s3.head_object(Bucket=name, Key="m/aborted")) == ("404", 404)
    assert error(
        lambda: s3.abort_multipart_upload(Bucket=name, Key="m/obj", UploadId="not-an-upload")
    ) == ("NoSuchUpload", 404)


def _raw(
    api: ApiWorld, creds: Creds, method: str, path: str, body: bytes, **headers: str
) -> tuple[int, bytes]:
    """A request signed by botocore's SigV4Auth with the given headers (an
    ``X-Amz-Content-SHA256`` among them is signed as it stands), sent as is."""
    request = AWSRequest(method, f"{api.kiln.url}{path}", data=body, headers=headers)
    SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), "s3", US).add_auth(request)
    prepared = request.prepare()
    sent = urllib.request.Request(
        prepared.url, data=body, method=method, headers=dict(prepared.headers)
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _signing_key(secret: str, date: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, US, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _chunked_put(
    api: ApiWorld, creds: Creds, path: str, data: bytes, chunk: int, tamper: bool = False
) -> tuple[int, bytes]:
    """PutObject as the SDKs that sign each chunk send it (STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
    the seed signature from botocore's signer, then each chunk's chained from it."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {
        "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Date": amz_date,
    }
    request = AWSRequest("PUT", f"{api.kiln.url}{path}", headers=headers)
    SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), "s3", US).add_auth(request)
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    key = _signing_key(creds.secret_access_key, amz_date[:8])
    scope = f"{amz_date[:8]}/{US}/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    previous, body = seed, b""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for piece in pieces:
        text = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{empty}\n"
            f"{hashlib.sha256(piece).hexdigest()}"
        )
        previous = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        sent = piece[:-1] + b"!" if tamper and piece and piece is pieces[1] else piece
        body += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    prepared = request.prepare()
    unsized = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    sent_request = urllib.request.Request(prepared.url, data=body, method="PUT", headers=unsized)
    try:
        with urllib.request.urlopen(sent_request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _code(body: bytes) -> str:
    return body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode() if b"<Code>" in body else ""


def test_streamed_bodies_are_verified(api: ApiWorld) -> None:
    me = fresh(api)
    s3 = api.kiln.client(me, US, "s3")
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    data = secrets.token_bytes(200_000)
    status, body = _chunked_put(api, me, f"/{name}/chunked", data, 65536)
    assert status == 200, body
    got = s3.get_object(Bucket=name, Key="chunked")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert "ContentEncoding" not in got  # aws-chunked is the upload's framing, not stored
    status, body = _chunked_put(api, me, f"/{name}/tampered", data, 65536, tamper=True)
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")
    assert error(lambda: s3.head_object(Bucket=name, Key="tampered")) == ("404", 404)

    # What boto3 sends over HTTPS: unsigned chunks with a CRC32 trailer.
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    def trailer_put(key: str, checksum: str) -> tuple[int, bytes]:
        framed = (
            f"{len(data):x}\r\n".encode()
            + data
            + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
        )
        return _raw(
            api,
            me,
            "PUT",
            f"/{name}/{key}",
            framed,
            **{
                "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                "Content-Encoding": "aws-chunked",
                "X-Amz-Trailer": "x-amz-checksum-crc32",
                "X-Amz-Decoded-Content-Length": str(len(data)),
            },
        )

    assert trailer_put("trailer", crc)[0] == 200
    assert s3.get_object(Bucket=name, Key="trailer")["Body"].read() == data
    status, body = trailer_put("bad-crc", "AAAAAA==")
    assert (status, _code(body)) == (400, "BadDigest")

    signed_wrong = hashlib.sha256(b"something else").hexdigest()
    status, body = _raw(
        api, me, "PUT", f"/{name}/x", b"abc", **{"X-Amz-Content-SHA256": signed_wrong}
    )
    assert (status, _code(body)) == (400, "XAmzContentSHA256Mismatch")
    status, body = _raw(
        api,
        me,
        "PUT",
        f"/{name}/x",
        b"abc",
        **{"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="},
    )
    assert (status, _code(body)) == (400, "BadDigest")
    status, body = _raw(
        api, me, "PUT", f"/{name}/x", b"abc", **{"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    assert status == 200, body
    status, body = _raw(api, me, "POST", f"/{name}?delete", b"<Delete><Object>", **{})
    assert (status, _code(body)) == (400, "MalformedXML")
    assert not list((api.kiln.data_dir / "s3" / "spool").glob("*"))  # nothing left behind


def test_aws_cli_multipart_round_trip(api: ApiWorld, tmp_path: Path) -> None:
    me = fresh(api)
    name = bucket_name("cli")
    source = tmp_path / "big.bin"
    with open(source, "wb") as f:
        for _ in range(17):
            f.write(secrets.token_bytes(MIB))
        f.write(b"tail")

    def s3(*args: str, region: str = US) -> subprocess.CompletedProcess[str]:
        done = api.kiln.aws(me, *args, region=region, service="s3")
        assert done.returncode == 0, done.stderr
        return done

    s3("mb", f"s3://{name}", region=EU)
    s3("cp", str(source), f"s3://{name}/disks/big.bin")
    listing = s3("ls", f"s3://{name}/disks/")
    assert "big.bin" in listing.stdout and str(source.stat().st_size) in listing.stdout
    head = api.kiln.client(me, US, "s3").head_object(Bucket=name, Key="disks/big.bin")
    assert head["ETag"].endswith('-3"')  # 8 MiB parts: the CLI used a multipart upload
    back = tmp_path / "back.bin"
    s3("cp", f"s3://{name}/disks/big.bin", str(back))
    assert sha256_of(back) == sha256_of(source)
    s3("cp", str(tmp_path / "back.bin"), f"s3://{name}/disks/copy.bin")
    s3("rm", f"s3://{name}/", "--recursive")
    assert "Contents" not in api.kiln.client(me, US, "s3").list_objects_v2(Bucket=name)
    s3("rb", f"s3://{name}")
    assert name not in s3("ls").stdout


def _ec2_cli(api: ApiWorld, creds: Creds, *args: str) -> dict[str, Any]:
    done = api.kiln.aws(creds, *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)) if done.stdout.strip() else {}


def _poll(fetch: Any, finished: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if finished(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_vm_import_and_export_through_s3_with_the_cli(api: ApiWorld, tmp_path: Path) -> None:
    me, stranger = fresh(api), fresh(api, "stranger")
    name = bucket_name("vmimport")
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(4 * MIB)
        f.seek(MIB)
        f.write(secrets.token_bytes(64 * 1024))
    qcow = tmp_path / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True
    )
    for args in (("mb", f"s3://{name}"), ("cp", str(qcow), f"s3://{name}/uploads/")):
        done = api.kiln.aws(me, *args, service="s3")
        assert done.returncode == 0, done.stderr

    container = f"Format=qcow2,UserBucket={{S3Bucket={name},S3Key=uploads/disk.qcow2}}"
    task = _ec2_cli(api, me, "import-image", "--disk-containers", container)
    task_id = task["ImportTaskId"]
    final = _poll(
        lambda: _ec2_cli(api, me, "describe-import-image-tasks", "--import-task-ids", task_id)[
            "ImportImageTasks"
        ][0],
        lambda t: t["Status"] not in ("active", "deleting"),
    )
    assert final["Status"] == "completed", final
    image_id = final["ImageId"]
    images = _ec2_cli(api, me, "describe-images", "--image-ids", image_id)["Images"]
    assert images[0]["State"] == "available"

    # Another account's bucket is refused, as VM Import refuses a bucket it cannot read.
    refused = api.kiln.aws(stranger, "import-image", "--disk-containers", container)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr

    export = _ec2_cli(
        api,
        me,
        "export-image",
        "--image-id",
        image_id,
        "--disk-image-format",
        "VMDK",
        "--s3-export-location",
        f"S3Bucket={name},S3Prefix=exports/",
    )
    export_id = export["ExportImageTaskId"]
    done = _poll(
        lambda: _ec2_cli(
            api, me, "describe-export-image-tasks", "--export-image-task-ids", export_id
        )["ExportImageTasks"][0],
        lambda t: t["Status"] != "active",
    )
    assert done["Status"] == "completed", done
    listing = api.kiln.aws(me, "ls", f"s3://{name}/exports/", service="s3")
    assert f"{export_id}.vmdk" in listing.stdout, listing
    back = tmp_path / "back.vmdk"
    fetched = api.kiln.aws(
        me, "cp", f"s3://{name}/exports/{export_id}.vmdk", str(back), service="s3"
    )
    assert fetched.returncode == 0, fetched.stderr
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(back)], check=True, capture_output=True
        ).stdout
    )
    assert info["format"] == "vmdk" and info["virtual-size"] == 4 * MIB
    flat = tmp_path / "back.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(back), str(flat)], check=True
    )
    assert sha256_of(flat) == sha256_of(raw)
