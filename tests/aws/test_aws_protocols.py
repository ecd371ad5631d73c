"""The plain Query and JSON protocols against botocore itself: its serializer writes, we parse;
we render, its parser reads. Random values for every operation of STS, IAM (plain Query with
maps and nested lists, to exercise what STS does not) and KMS. EC2's flavour:
tests/ec2/test_ec2_protocol.py."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.model import ServiceModel
from botocore.parsers import JSONParser, QueryParser
from botocore.serialize import create_serializer
from shape_values import random_value

from kiln.aws.json import JsonProtocol
from kiln.aws.model import load_model
from kiln.aws.query import QueryProtocol, decode_form
from kiln.aws.wire import WireRequest
from kiln.errors import KilnError

STS = load_model("sts", "2011-06-15")
IAM = load_model("iam", "2010-05-08")
KMS = load_model("kms", "2014-11-01")


def serialized(
    model: ServiceModel, protocol: str, action: str, params: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    request = create_serializer(protocol, include_validation=False).serialize_to_request(
        params, model.operation_model(action)
    )
    prepared = AWSRequest(
        method="POST", url="http://kiln/", data=request["body"], headers=request["headers"]
    ).prepare()
    body = prepared.body
    data = body.encode() if isinstance(body, str) else (body or b"")
    return data, {k.lower(): v for k, v in prepared.headers.items()}


@pytest.mark.parametrize("model", [STS, IAM], ids=["sts", "iam"])
@pytest.mark.parametrize("seed", range(2))
def test_query_parse_inverts_botocore_serializer_for_every_operation(
    model: ServiceModel, seed: int
) -> None:
    rng = random.Random(seed)
    protocol = QueryProtocol(model, ec2=False)
    for action in sorted(model.operation_names):
        shape = model.operation_model(action).input_shape
        params = random_value(shape, rng, ms=True) if shape is not None else {}
        body, headers = serialized(model, "query", action, params)
        call = protocol.decode(WireRequest("POST", "/", "", headers, body), {action})
        assert (call.operation, call.params) == (action, params), action


@pytest.mark.parametrize("model", [STS, IAM], ids=["sts", "iam"])
def test_query_render_is_read_back_by_botocore_for_every_operation(model: ServiceModel) -> None:
    rng = random.Random(7)
    protocol = QueryProtocol(model, ec2=False)
    for action in sorted(model.operation_names):
        shape = model.operation_model(action).output_shape
        if shape is None:
            continue
        result = random_value(shape, rng, ms=True)
        body = protocol.render(action, result, "req-1").body
        parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
        parsed.pop("ResponseMetadata", None)
        assert parsed == result, action


def test_query_error_response_and_unknown_action() -> None:
    protocol = QueryProtocol(STS, ec2=False)
    body = protocol.render_error("InvalidClientTokenId", "no <such> key", 403, "r-9").body
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": 403}, None)
    assert parsed["Error"] == {
        "Type": "Sender",
        "Code": "InvalidClientTokenId",
        "Message": "no <such> key",
    }
    with pytest.raises(KilnError) as e:
        protocol.decode(
            WireRequest("POST", "/", "", {}, b"Action=AssumeRole&Version=2011-06-15"),
            {"GetCallerIdentity"},
        )
    assert e.value.code.code == "InvalidAction"


@pytest.mark.parametrize("seed", range(3))
def test_json_parse_inverts_botocore_serializer_for_every_kms_operation(seed: int) -> None:
    rng = random.Random(seed)
    protocol = JsonProtocol(KMS)
    for action in sorted(KMS.operation_names):
        shape = KMS.operation_model(action).input_shape
        params = random_value(shape, rng, ms=True) if shape is not None else {}
        body, headers = serialized(KMS, "json", action, params)
        assert headers["x-amz-target"] == f"TrentService.{action}"
        call = protocol.decode(WireRequest("POST", "/", "", headers, body), {action})
        assert (call.operation, call.params) == (action, params), action


def test_json_render_is_read_back_by_botocore_for_every_kms_operation() -> None:
    rng = random.Random(11)
    protocol = JsonProtocol(KMS)
    for action in sorted(KMS.operation_names):
        shape = KMS.operation_model(action).output_shape
        if shape is None:
            continue
        result = random_value(shape, rng, ms=True)
        rendered = protocol.render(action, result, "req-1")
        assert rendered.content_type == "application/x-amz-json-1.1"
        parsed = JSONParser().parse(
            {"body": rendered.body, "headers": {}, "status_code": 200}, shape
        )
        parsed.pop("ResponseMetadata", None)
        assert parsed == result, action


@pytest.mark.parametrize(
    ("target", "body", "expected"),
    [
        ("TrentService.Nope", b"{}", "UnknownOperationException"),
        ("DynamoDB_20120810.ListKeys", b"{}", "UnknownOperationException"),
        ("", b"{}", "UnknownOperationException"),
        ("TrentService.ListKeys", b"{nope", "SerializationException"),
        ("TrentService.ListKeys", b"\xff\xfe", "SerializationException"),
        ("TrentService.ListKeys", b"[1, 2]", "SerializationException"),
        ("TrentService.ListKeys", b'{"Limit": "ten"}', "SerializationException"),
        ("TrentService.ListKeys", b'{"Limit": true}', "SerializationException"),
        ("TrentService.ListKeys", b'{"Limit": 0}', "ValidationException"),
        ("TrentService.DescribeKey", b"{}", "ValidationException"),
        ("TrentService.DescribeKey", b'{"KeyId": ""}', "ValidationException"),
        ("TrentService.CreateKey", b'{"KeySpec": "RSA_9"}', "ValidationException"),
        ("TrentService.CreateKey", b'{"Tags": {"a": 1}}', "SerializationException"),
    ],
)
def test_json_bad_input(target: str, body: bytes, expected: str) -> None:
    with pytest.raises(KilnError) as e:
        JsonProtocol(KMS).decode(
            WireRequest("POST", "/", "", {"x-amz-target": target}, body), set(KMS.operation_names)
        )
    assert e.value.code.code == expected


def test_json_ignores_unknown_members_and_nulls() -> None:
    call = JsonProtocol(KMS).decode(
        WireRequest(
            "POST",
            "/",
            "",
            {"x-amz-target": "TrentService.DescribeKey"},
            b'{"KeyId": "k", "Colour": 1, "GrantTokens": null}',
        ),
        {"DescribeKey"},
    )
    assert call.params == {"KeyId": "k"}


def test_json_error_is_read_by_botocore() -> None:
    rendered = JsonProtocol(KMS).render_error(
        "NotFoundException", "Key 'x' does not exist", 400, "r-1"
    )
    parsed = JSONParser().parse({"body": rendered.body, "headers": {}, "status_code": 400}, None)
    assert parsed["Error"]["Code"] == "NotFoundException"
    assert parsed["Error"]["Message"] == "Key 'x' does not exist"
    assert json.loads(rendered.body) == {
        "__type": "NotFoundException",
        "message": "Key 'x' does not exist",
    }


def test_decode_form_is_shared() -> None:
    assert decode_form(b"Action=GetCallerIdentity&Version=2011-06-15") == {
        "Action": ["GetCallerIdentity"],
        "Version": ["2011-06-15"],
    }
