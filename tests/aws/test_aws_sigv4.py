"""SigV4 verification against requests really signed by botocore (SigV4Auth / SigV4QueryAuth)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kiln.aws.sigv4 import (
    DEFAULT_RULES,
    S3_RULES,
    AuthResult,
    Credential,
    SigningRules,
    verify_sigv4,
)
from kiln.errors import KilnError

KEY = Credential("AKIAKILNTEST0000001", "s3cr3t/with+chars=", "111122223333")
FORM = {
    "Action": "DescribeImages",
    "Version": "2016-11-15",
    "Owner.1": "self",
    "Filter.1.Name": "name",
    "Filter.1.Value.1": "web *ü/~",
}


def lookup(access_key_id: str) -> Credential | None:
    return KEY if access_key_id == KEY.access_key_id else None


@dataclass(frozen=True)
class Signed:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


def sign(
    *,
    secret: str = KEY.secret_access_key,
    key: str = KEY.access_key_id,
    region: str = "us-east-1",
    method: str = "POST",
    params: dict[str, str] | None = None,
    presign: bool = False,
    expires: int = 60,
) -> Signed:
    """Sign like boto3 does (the ec2 serializer's form body), or presign a GET URL."""
    request = AWSRequest(
        method=method,
        url="http://127.0.0.1:8787/",
        data=FORM if method == "POST" else None,
        params=params or {},
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        if method == "POST"
        else {},
    )
    credentials = Credentials(key, secret)
    if presign:
        SigV4QueryAuth(credentials, "ec2", region, expires=expires).add_auth(request)
    else:
        SigV4Auth(credentials, "ec2", region).add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = [(k, v) for k, v in prepared.headers.items()]
    headers.append(("Host", url.netloc))  # what the HTTP client puts on the wire
    body = prepared.body or b""
    return Signed(
        prepared.method,
        url.path,
        url.query,
        headers,
        body.encode() if isinstance(body, str) else body,
    )


def verify(
    signed: Signed,
    *,
    now: datetime | None = None,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> AuthResult:
    return verify_sigv4(
        signed.method,
        signed.path,
        signed.query,
        signed.headers if headers is None else headers,
        signed.body if body is None else body,
        lookup,
        now or datetime.now(UTC),
    )


def auth_failure(
    signed: Signed,
    *,
    now: datetime | None = None,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> str:
    with pytest.raises(KilnError) as caught:
        verify(signed, now=now, body=body, headers=headers)
    assert caught.value.code.code == "AuthFailure"
    assert caught.value.code.http_status == 401
    return caught.value.message


def test_sigv4_accepts_botocore_signed_post_and_reports_scope() -> None:
    assert verify(sign(region="eu-west-1")) == AuthResult(
        access_key_id=KEY.access_key_id,
        account_id="111122223333",
        region="eu-west-1",
        service="ec2",
    )


def test_sigv4_accepts_signed_get_with_awkward_query_values() -> None:
    params = {
        "Action": "DescribeImages",
        "Version": "2016-11-15",
        "Filter.1.Value.1": "a b+c/ü~*",
        "Empty": "",
    }
    assert verify(sign(method="GET", params=params)).account_id == "111122223333"


def test_sigv4_accepts_presigned_url_until_it_expires() -> None:
    signed = sign(
        method="GET",
        params={"Action": "DescribeRegions", "Version": "2016-11-15"},
        presign=True,
        expires=60,
    )
    assert "X-Amz-Signature=" in signed.query
    assert verify(signed).region == "us-east-1"
    message = auth_failure(signed, now=datetime.now(UTC) + timedelta(seconds=120))
    assert message.startswith("Request has expired")


def test_sigv4_rejects_wrong_secret_and_unknown_key_alike() -> None:
    expected = "AWS was not able to validate the provided access credentials"
    assert auth_failure(sign(secret="not-the-secret")) == expected
    assert auth_failure(sign(key="AKIAUNKNOWN")) == expected


def test_sigv4_rejects_tampered_body_and_signed_header() -> None:
    signed = sign()
    auth_failure(signed, body=signed.body.replace(b"self", b"kiln"))

    def one_second_off(stamp: str) -> str:  # 20261123T100005Z -> 20261123T100004Z
        return stamp[:-2] + ("1" if stamp[-2] == "0" else "0") + "Z"

    shifted = [(k, one_second_off(v) if k == "X-Amz-Date" else v) for k, v in signed.headers]
    assert auth_failure(signed, headers=shifted).startswith("AWS was not able to validate")
    moved = [(k, "evil.example:80" if k == "Host" else v) for k, v in signed.headers]
    auth_failure(signed, headers=moved)


def test_sigv4_rejects_claimed_payload_hash_that_does_not_match_body() -> None:
    signed = sign()
    headers = [*signed.headers, ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]
    assert "x-amz-content-sha256" in auth_failure(signed, headers=headers)


@pytest.mark.parametrize(
    ("offset", "start"),
    [
        (timedelta(minutes=6), "Signature expired"),
        (timedelta(minutes=-6), "Signature not yet current"),
    ],
)
def test_sigv4_rejects_clock_skew_over_five_minutes(offset: timedelta, start: str) -> None:
    signed = sign()
    assert auth_failure(signed, now=datetime.now(UTC) + offset).startswith(start)
    assert verify(signed, now=datetime.now(UTC) + offset / 2).region == "us-east-1"


@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        (None, "access credentials are missing"),
        ("Basic dXNlcjpwYXNz", "Unsupported authorization type"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/ec2, SignedHeaders=host, "
            "Signature=00",
            "exactly 5 slash-delimited elements",
        ),
        ("AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/ec2/aws4_request", "'SignedHeaders'"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/19990101/us-east-1/ec2/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=00",
            "Date in Credential scope does not match",
        ),
    ],
)
def test_sigv4_rejects_missing_or_garbled_authorization(
    authorization: str | None, fragment: str
) -> None:
    signed = sign()
    headers = [(k, v) for k, v in signed.headers if k.lower() != "authorization"]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    assert fragment in auth_failure(signed, headers=headers)


def test_credential_repr_hides_the_secret() -> None:
    assert KEY.secret_access_key not in repr(KEY)


def test_scope_service_reads_the_claimed_service_of_both_forms() -> None:
    from kiln.aws.sigv4 import scope_service

    signed = sign()
    assert scope_service(signed.query, signed.headers) == "ec2"
    presigned = sign(method="GET", presign=True)
    assert scope_service(presigned.query, presigned.headers) == "ec2"
    assert scope_service("", [("Host", "kiln")]) is None
    assert scope_service("", [("Authorization", "AWS4-HMAC-SHA256 Credential=garbled")]) is None


def s3_signed(
    path: str, *, body: bytes = b"", unsigned: bool = False, presign: bool = False
) -> Signed:
    """Sign like boto3's s3 client (S3SigV4Auth / S3SigV4QueryAuth): the path as sent."""
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
    from botocore.config import Config

    request = AWSRequest(method="PUT", url=f"http://127.0.0.1:8787{path}", data=body)
    request.context["client_config"] = Config(s3={"payload_signing_enabled": not unsigned})
    credentials = Credentials(KEY.access_key_id, KEY.secret_access_key)
    auth = S3SigV4QueryAuth if presign else S3SigV4Auth
    auth(credentials, "s3", "us-east-1").add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = [(k, v) for k, v in prepared.headers.items()] + [("Host", url.netloc)]
    return Signed("PUT", url.path, url.query, headers, body)


def verify_s3(signed: Signed, body: bytes | None = None, rules: SigningRules = S3_RULES) -> str:
    return verify_sigv4(
        signed.method,
        signed.path,
        signed.query,
        signed.headers,
        signed.body if body is None else body,
        lookup,
        datetime.now(UTC),
        rules,
    ).service


AWKWARD_KEY = "/bucket/a%20b/..//c%2Bd%3D/%C3%BC"


def test_s3_signs_the_path_as_sent_and_other_services_do_not() -> None:
    signed = s3_signed(AWKWARD_KEY, body=b"hello")
    assert verify_s3(signed) == "s3"
    with pytest.raises(KilnError):  # normalised and encoded twice, it is another path
        verify_s3(signed, rules=DEFAULT_RULES)
    with pytest.raises(KilnError):
        verify_s3(signed, body=b"hellO")  # the hash S3 sends still covers the body


def test_s3_accepts_unsigned_payload_and_presigned_urls_only_under_s3_rules() -> None:
    unsigned = s3_signed("/bucket/key", body=b"anything", unsigned=True)
    assert ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD") in unsigned.headers
    assert verify_s3(unsigned, body=b"something else") == "s3"
    with pytest.raises(KilnError):
        verify_s3(unsigned, rules=DEFAULT_RULES)
    presigned = s3_signed("/bucket/key", presign=True)
    assert verify_s3(presigned, body=b"") == "s3"


def test_s3_refuses_streaming_payloads() -> None:
    signed = s3_signed("/bucket/key")
    headers = [
        (k, "STREAMING-UNSIGNED-PAYLOAD-TRAILER" if k.lower() == "x-amz-content-sha256" else v)
        for k, v in signed.headers
    ]
    with pytest.raises(KilnError) as e:
        verify_s3(Signed(signed.method, signed.path, signed.query, headers, b""))
    assert "aws-chunked" in e.value.message


@pytest.mark.parametrize("presign", [False, True])
def test_sigv4_accepts_short_test_keys(presign: bool) -> None:
    """What test suites use (``test``/``test``): any 1-128 printable characters."""
    for key, secret in (("test", "test"), ("FOOBARKEY", "FOOBARSECRET"), ("k", "s")):
        cred = Credential(key, secret, "000000000000")

        def found(k: str, c: Credential = cred) -> Credential | None:
            return c if k == c.access_key_id else None

        signed = sign(key=key, secret=secret, presign=presign, region="ap-south-1")
        got = verify_sigv4(
            signed.method,
            signed.path,
            signed.query,
            signed.headers,
            signed.body,
            found,
            datetime.now(UTC),
        )
        assert (got.access_key_id, got.region) == (key, "ap-south-1")
        wrong = sign(key=key, secret=secret + "x", presign=presign)
        with pytest.raises(KilnError):
            verify_sigv4(
                wrong.method,
                wrong.path,
                wrong.query,
                wrong.headers,
                wrong.body,
                found,
                datetime.now(UTC),
            )
