"""rest-json (Recycle Bin, Image Builder) and rest-xml (S3) against botocore itself: its serializer
and request pipeline write the HTTP request, we decode it; we render, its parser reads. Random
values for every operation (tests/aws/test_aws_protocols.py's generator), then unmodified boto3
against build_edge served by uvicorn."""

from __future__ import annotations

import hashlib
import random
import re
import string
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import boto3
import pytest
from botocore.awsrequest import (
    AWSResponse,
    HeadersDict,
    create_request_object,
    prepare_request_dict,
)
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.handlers import parse_get_bucket_location
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from dateutil.tz import tzutc
from shape_values import random_value

from kiln.aws.context import RequestContext
from kiln.aws.edge import Service, build_edge
from kiln.aws.model import load_model
from kiln.aws.rest import split_header_list
from kiln.aws.rest_json import RestJsonProtocol
from kiln.aws.rest_xml import RestXmlProtocol, parse_xml
from kiln.aws.sigv4 import S3_RULES, Credential
from kiln.aws.wire import Params, WireRequest
from kiln.errors import ErrorCode, KilnError
from tests.ec2.live import live_server


class _Raw:
    """Just enough of a urllib3 response for botocore's AWSResponse.content."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._body


RBIN = load_model("rbin", "2021-06-15")
IMAGEBUILDER = load_model("imagebuilder", "2019-12-02")
S3 = load_model("s3", "2006-03-01")
MODELS = pytest.mark.parametrize(
    "model", [RBIN, IMAGEBUILDER, S3], ids=["rbin", "imagebuilder", "s3"]
)
#: The deprecated S3 Get/PutBucketNotification have members ``Event`` and ``Events`` (a flattened
#: list of ``<Event>``) with the same XML name: no XML can say which is meant.
AMBIGUOUS_XML = frozenset({"GetBucketNotification", "PutBucketNotification"})
#: S3 SelectObjectContent answers with an event stream, which Kiln does not render.
EVENT_STREAMS = frozenset({"SelectObjectContent"})
HEADER_SAFE = string.ascii_letters + string.digits + "-_.~:/=+ ;!*'()"


def protocol_for(model: ServiceModel) -> RestJsonProtocol | RestXmlProtocol:
    return RestXmlProtocol(model) if model.protocol == "rest-xml" else RestJsonProtocol(model)


def _header_text(rng: random.Random, shape: Shape) -> str:
    if shape.enum:
        return str(rng.choice(shape.enum))
    low, high = shape.metadata.get("min", 1), min(shape.metadata.get("max", 12), 12)
    text = "".join(rng.choice(HEADER_SAFE) for _ in range(max(low, min(high, 8))))
    return "h" + text.strip()[1:] if text.strip() == text else "h" * len(text)


def _fit_for_http(shape: Shape, value: Any, rng: random.Random, where: str | None) -> Any:
    """What survives HTTP: header text is printable ASCII, labels are not empty, timestamps in
    headers or RFC 1123 are whole seconds (botocore writes them so), header map keys are
    lower-cased."""
    kind = shape.type_name
    in_header = where in ("header", "headers")
    if in_header and kind == "string":
        return _header_text(rng, shape)
    if kind == "timestamp" and (
        in_header or shape.serialization.get("timestampFormat") == "rfc822"
    ):
        return value.replace(microsecond=0)
    if kind == "structure":
        return {n: _fit_for_http(shape.members[n], v, rng, where) for n, v in value.items()}
    if where == "uri" and kind == "string" and not value:
        return "x"
    if kind == "list":
        return [_fit_for_http(shape.member, v, rng, where) for v in value]
    if kind == "map" and where == "headers":
        return {
            f"k{i}{_header_text(rng, shape.key)}".lower()[:20]: _fit_for_http(
                shape.value, v, rng, where
            )
            for i, v in enumerate(value.values())
        }
    return value


def random_params(op: OperationModel, rng: random.Random) -> dict[str, Any]:
    """Random input that survives HTTP; members in the host prefix (S3's ``RequestRoute``) are
    DNS labels, a string payload is not empty."""
    shape = op.input_shape
    if shape is None:
        return {}
    params = random_value(shape, rng, ms=True)
    out = {
        name: _fit_for_http(
            shape.members[name], value, rng, shape.members[name].serialization.get("location")
        )
        for name, value in params.items()
    }
    for label in re.findall(r"{(\w+)}", (op.endpoint or {}).get("hostPrefix", "")):
        out[label] = "route-1"
    payload = shape.serialization.get("payload")
    if out.get(payload) == "":
        out[payload] = "{}"
    return out


def wire_request(model: ServiceModel, op: OperationModel, params: dict[str, Any]) -> WireRequest:
    """``params`` as botocore puts them on the wire (serializer, then its request pipeline)."""
    request = create_serializer(model.protocol, include_validation=False).serialize_to_request(
        params, op
    )
    prepare_request_dict(request, endpoint_url="http://127.0.0.1:9")
    prepared = create_request_object(request).prepare()
    url = urlsplit(prepared.url)
    headers: dict[str, str] = {}
    for name, value in prepared.headers.items():
        text = value.decode() if isinstance(value, bytes) else str(value)
        key = name.lower()
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    body = prepared.body or b""
    return WireRequest(
        prepared.method,
        url.path,
        url.query,
        headers,
        body.encode() if isinstance(body, str) else body,
    )


def _route(op: OperationModel) -> tuple[str, str]:
    return op.http["method"], op.http["requestUri"]


def expected_params(shape: Shape | None, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as Kiln decodes them: a blob payload is always there (``b""`` when empty)."""
    if shape is None:
        return params
    out = dict(params)
    payload = shape.serialization.get("payload")
    if payload is not None and shape.members[payload].type_name == "blob":
        out.setdefault(payload, b"")
    return out


@MODELS
@pytest.mark.parametrize("seed", range(3))
def test_decode_inverts_botocore_for_every_operation(model: ServiceModel, seed: int) -> None:
    rng = random.Random(seed)
    protocol = protocol_for(model)
    served = protocol.operation_names()
    for name in sorted(set(model.operation_names) - AMBIGUOUS_XML):
        op = model.operation_model(name)
        params = random_params(op, rng)
        request = wire_request(model, op, params)
        # Twins on one route (S3's deprecated aliases, ListDirectoryBuckets of another host)
        # are told apart by what is served.
        twins = any(_route(model.operation_model(o)) == _route(op) for o in served - {name})
        call = protocol.decode(request, {name} if twins else served)
        assert call.operation == name, (request.method, request.path, request.query_string)
        assert call.params == expected_params(op.input_shape, params), name


def _streams(op: OperationModel) -> str | None:
    """The output's blob/string payload member (botocore hands it over unparsed)."""
    shape = op.output_shape
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload is not None and shape is not None:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            return str(payload)
    return None


def _fit_output(shape: Shape, value: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = {}
    for name, item in value.items():
        member = shape.members[name]
        location = member.serialization.get("location")
        if location == "header" and member.type_name == "list":  # botocore splits on "," only
            item = [_header_text(rng, member.member) for _ in item]
        out[name] = _fit_for_http(member, item, rng, location)
    return out


@MODELS
@pytest.mark.parametrize("seed", range(3))
def test_render_is_read_back_by_botocore_for_every_operation(
    model: ServiceModel, seed: int
) -> None:
    rng = random.Random(100 + seed)
    protocol = protocol_for(model)
    parser = create_parser(model.protocol)
    for name in sorted(set(model.operation_names) - AMBIGUOUS_XML - EVENT_STREAMS):
        op = model.operation_model(name)
        shape = op.output_shape
        result = (
            _fit_output(shape, random_value(shape, rng, ms=True), rng) if shape is not None else {}
        )
        streamed = _streams(op)
        payload = result.pop(streamed, None) if streamed else None
        rendered = protocol.render(name, result, "req-1")
        ranged = model.protocol == "rest-xml" and "ContentRange" in result
        assert rendered.status == (206 if ranged else op.http.get("responseCode", 200)), name
        if streamed is not None and payload is not None:
            assert protocol.render(name, {streamed: payload}, "r").body == (
                payload if isinstance(payload, bytes) else payload.encode()
            )
        response = {"body": rendered.body, "headers": HeadersDict(rendered.headers)}
        parsed = parser.parse({**response, "status_code": rendered.status}, shape)
        parsed.pop("ResponseMetadata", None)
        if name == "GetBucketLocation":  # botocore's handler reads it, not its parser
            parse_get_bucket_location(parsed, AWSResponse("", 200, {}, _Raw(rendered.body)))
        if streamed:
            parsed.pop(streamed, None)
        payload_member = shape.serialization.get("payload") if shape is not None else None
        if payload_member and not streamed:  # botocore reads an absent structure as {}
            result.setdefault(payload_member, {})
        for member_name, member in shape.members.items() if shape is not None else ():
            if member.serialization.get("location") == "headers":  # and a header map so too
                result.setdefault(member_name, {})
        assert parsed == result, name


@MODELS
def test_errors_are_read_by_botocore(model: ServiceModel) -> None:
    rendered = protocol_for(model).render_error(
        "ResourceNotFoundException", "no <rule> & so", 404, "r-1"
    )
    response = {"body": rendered.body, "headers": HeadersDict(rendered.headers), "status_code": 404}
    parsed = create_parser(model.protocol).parse(response, None)
    assert parsed["Error"]["Code"] == "ResourceNotFoundException"
    assert parsed["Error"]["Message"] == "no <rule> & so"


def _request(
    method: str, path: str, query: str = "", body: bytes = b"", **headers: str
) -> WireRequest:
    return WireRequest(method, path, query, headers, body)


@pytest.mark.parametrize(
    ("request_", "code", "status"),
    [
        (_request("GET", "/nope"), "UnknownOperationException", 404),
        (_request("PUT", "/rules"), "UnknownOperationException", 404),
        (_request("GET", "/rules/a/b"), "UnknownOperationException", 404),
        (_request("POST", "/rules", body=b"{nope"), "SerializationException", 400),
        (_request("POST", "/rules", body=b"[]"), "SerializationException", 400),
        (_request("POST", "/rules", body=b'{"RetentionPeriod": 7}'), "SerializationException", 400),
        (_request("POST", "/rules", body=b"{}"), "ValidationException", 400),
        (
            _request("POST", "/rules", body=b'{"ResourceType": "AMI", "RetentionPeriod": {}}'),
            "ValidationException",
            400,
        ),
        (
            _request(
                "POST",
                "/rules",
                body=b'{"ResourceType": "VOLUME", "RetentionPeriod": '
                b'{"RetentionPeriodValue": 1, "RetentionPeriodUnit": "DAYS"}}',
            ),
            "ValidationException",
            400,
        ),
        (_request("GET", "/rules/%FF"), "SerializationException", 400),
        (
            _request("POST", "/list-rules", body=b'{"ResourceType": "AMI", "MaxResults": 0}'),
            "ValidationException",
            400,
        ),
        (_request("DELETE", "/tags/arn", "tagKeys="), "ValidationException", 400),
    ],
)
def test_rest_json_bad_input(request_: WireRequest, code: str, status: int) -> None:
    with pytest.raises(KilnError) as e:
        RestJsonProtocol(RBIN).decode(request_, RBIN.operation_names)
    assert (e.value.code.code, e.value.code.http_status) == (code, status)


def test_rest_json_not_served_is_unknown_and_labels_are_percent_decoded() -> None:
    with pytest.raises(KilnError) as e:
        RestJsonProtocol(RBIN).decode(_request("GET", "/rules/abcdefghijk"), {"ListRules"})
    assert e.value.code.code == "UnknownOperationException"
    call = RestJsonProtocol(RBIN).decode(
        _request("GET", "/tags/arn%3Aaws%3Arbin%3Aus-east-1%3A1%3Arule%2Fabc"),
        {"ListTagsForResource"},
    )
    assert call.params == {"ResourceArn": "arn:aws:rbin:us-east-1:1:rule/abc"}


def test_rest_json_renders_status_and_no_body_for_204() -> None:
    rendered = RestJsonProtocol(RBIN).render("DeleteRule", {}, "r")
    assert (rendered.status, rendered.body) == (204, b"")
    created = RestJsonProtocol(RBIN).render("CreateRule", {"Identifier": "abcdefghijk"}, "r")
    assert (created.status, created.body) == (201, b'{"Identifier":"abcdefghijk"}')
    with pytest.raises(ValueError):
        RestJsonProtocol(RBIN).render("CreateRule", {"Colour": "red"}, "r")


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (_request("PATCH", "/b"), "MethodNotAllowed"),
        (_request("PUT", "/b", "tagging", b"<Tagging><TagSet>"), "MalformedXML"),
        (_request("PUT", "/b", "tagging", b"<Other/>"), "MalformedXML"),
        (
            _request(
                "PUT",
                "/b",
                "tagging",
                b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
                b"<Tagging><TagSet><Tag><Key>&b;</Key><Value>v</Value></Tag></TagSet></Tagging>",
            ),
            "MalformedXML",
        ),
        (
            _request(
                "PUT",
                "/b",
                "tagging",
                b'<!DOCTYPE t SYSTEM "file:///etc/passwd"><Tagging><TagSet/></Tagging>',
            ),
            "MalformedXML",
        ),
        (_request("PUT", "/b", "tagging", b"<Tagging/>"), "InvalidArgument"),
        (_request("PUT", "/b", "tagging"), "InvalidArgument"),
        (_request("GET", "/b", "max-keys=ten"), "MalformedXML"),
        (_request("GET", "/b", "encoding-type=base64"), "InvalidArgument"),
        (_request("GET", "/b", "list-type=2&fetch-owner=yes"), "MalformedXML"),
    ],
)
def test_rest_xml_bad_input(request_: WireRequest, code: str) -> None:
    with pytest.raises(KilnError) as e:
        RestXmlProtocol(S3).decode(request_, S3.operation_names)
    assert e.value.code.code == code


def test_rest_xml_picks_the_most_specific_route() -> None:
    protocol, served = RestXmlProtocol(S3), S3.operation_names

    def operation(method: str, path: str, query: str = "", **headers: str) -> str:
        return protocol.decode(_request(method, path, query, **headers), served).operation

    assert operation("GET", "/") == "ListBuckets"
    assert operation("GET", "/b") == "ListObjects"
    assert operation("GET", "/b", "list-type=2") == "ListObjectsV2"
    assert operation("GET", "/b", "tagging") == "GetBucketTagging"
    assert operation("GET", "/b", "lifecycle") == "GetBucketLifecycleConfiguration"
    assert operation("PUT", "/b/k/with/slashes") == "PutObject"
    assert operation("PUT", "/b/k", "partNumber=1&uploadId=u") == "UploadPart"
    assert operation("PUT", "/b/k", **{"x-amz-copy-source": "a/b"}) == "CopyObject"
    assert operation("HEAD", "/b/k") == "HeadObject"
    with pytest.raises(KilnError) as e:
        protocol.decode(_request("GET", "/b", "tagging"), {"ListObjects"})
    assert (e.value.code.code, e.value.code.http_status) == ("NotImplemented", 501)


def test_rest_xml_keys_keep_their_slashes_and_percent_signs() -> None:
    call = RestXmlProtocol(S3).decode(_request("GET", "/b/a/%2F/b%25c%20d"), {"GetObject"})
    assert call.params == {"Bucket": "b", "Key": "a///b%c d"}


def test_parse_xml_ignores_namespaces() -> None:
    root = parse_xml(b'<a xmlns="urn:x" xmlns:p="urn:p" p:t="1"><p:b>x</p:b></a>')
    assert (root.tag, root.attrib, [c.tag for c in root], root[0].text) == (
        "a",
        {"t": "1"},
        ["b"],
        "x",
    )


def test_split_header_list() -> None:
    assert split_header_list('a, "b,c", "d\\"e"') == ["a", "b,c", 'd"e']


def test_header_timestamps_render_as_http_dates() -> None:
    rendered = RestXmlProtocol(S3).render(
        "HeadObject", {"LastModified": datetime(2026, 1, 2, 3, 4, 5), "ContentLength": 3}, "r"
    )
    assert rendered.headers["Last-Modified"] == "Fri, 02 Jan 2026 03:04:05 GMT"
    assert rendered.headers["Content-Length"] == "3"
    assert rendered.body == b""


# --- end to end: unmodified boto3 against build_edge served by uvicorn -----------------------
KEY = Credential("AKIAKILNRESTTEST0001", "rest-secret/+=", "111122223333")
NoSuchKey = ErrorCode("NoSuchKey", 404)
DISK = b"\x00disk\xff" * 100


def _lookup(access_key_id: str) -> Credential | None:
    return KEY if access_key_id == KEY.access_key_id else None


def _client(service: str, url: str, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=KEY.access_key_id,
        aws_secret_access_key=KEY.secret_access_key,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def _rbin_service(rules: dict[str, dict[str, Any]]) -> Service:
    def create_rule(context: RequestContext, params: Params) -> dict[str, object]:
        identifier = f"r{len(rules):010d}"
        rules[identifier] = {**params, "Identifier": identifier, "Status": "available"}
        return rules[identifier]

    def list_rules(context: RequestContext, params: Params) -> dict[str, object]:
        kind = params["ResourceType"]
        found = [r for r in rules.values() if r["ResourceType"] == kind]
        return {
            "Rules": [
                {"Identifier": r["Identifier"], "Description": r.get("Description")} for r in found
            ]
        }

    def delete_rule(context: RequestContext, params: Params) -> dict[str, object]:
        rules.pop(str(params["Identifier"]))
        return {}

    actions = {"CreateRule": create_rule, "ListRules": list_rules, "DeleteRule": delete_rule}
    return Service("rbin", RestJsonProtocol(RBIN), actions)


def test_boto3_rbin_against_the_edge() -> None:
    rules: dict[str, dict[str, Any]] = {}
    app = build_edge([_rbin_service(rules)], _lookup, ["eu-west-1"], state=None)
    with live_server(app) as url:
        rbin = _client("rbin", url)
        created = rbin.create_rule(
            ResourceType="EC2_IMAGE",
            Description="keep AMIs a week",
            RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
            Tags=[{"Key": "team", "Value": "a b/ü"}],
        )
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert created["RetentionPeriod"] == {
            "RetentionPeriodValue": 7,
            "RetentionPeriodUnit": "DAYS",
        }
        assert rules[created["Identifier"]]["Tags"] == [{"Key": "team", "Value": "a b/ü"}]
        listed = rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]
        assert listed == [{"Identifier": created["Identifier"], "Description": "keep AMIs a week"}]
        deleted = rbin.delete_rule(Identifier=created["Identifier"])
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204 and not rules
        for call, code, status in [
            (lambda: rbin.get_rule(Identifier="r0000000000"), "UnknownOperationException", 404),
            (
                lambda: rbin.list_rules(ResourceType="NOT_A_TYPE"),
                "ValidationException",
                400,
            ),
        ]:
            with pytest.raises(ClientError) as e:
                call()
            error = e.value.response
            assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
                code,
                status,
            )
        wrong = boto3.client(
            "rbin",
            endpoint_url=url,
            region_name="eu-west-1",
            aws_access_key_id=KEY.access_key_id,
            aws_secret_access_key="nope",
        )
        with pytest.raises(ClientError) as e:
            wrong.list_rules(ResourceType="EC2_IMAGE")
        assert e.value.response["Error"]["Code"] == "AuthFailure"


def _s3_service(buckets: dict[str, dict[str, dict[str, Any]]]) -> Service:
    def list_buckets(context: RequestContext, params: Params) -> dict[str, object]:
        return {
            "Buckets": [{"Name": name} for name in sorted(buckets)],
            "Owner": {"ID": context.account_id},
        }

    def create_bucket(context: RequestContext, params: Params) -> dict[str, object]:
        buckets[str(params["Bucket"])] = {}
        where = params.get("CreateBucketConfiguration", {})
        assert where == {"LocationConstraint": context.region}  # the XML payload, parsed
        return {"Location": f"/{params['Bucket']}"}

    def put_object(context: RequestContext, params: Params) -> dict[str, object]:
        body = params["Body"]
        assert isinstance(body, bytes)
        buckets[str(params["Bucket"])][str(params["Key"])] = {**params}
        return {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}

    def get_object(context: RequestContext, params: Params) -> dict[str, object]:
        found = buckets[str(params["Bucket"])].get(str(params["Key"]))
        if found is None:
            raise KilnError(NoSuchKey, "The specified key does not exist.")
        return {
            "Body": found["Body"],
            "ContentLength": len(found["Body"]),
            "ContentType": found.get("ContentType", "binary/octet-stream"),
            "Metadata": found.get("Metadata", {}),
            "LastModified": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        }

    def head_object(context: RequestContext, params: Params) -> dict[str, object]:
        result = get_object(context, params)
        del result["Body"]
        return result

    actions = {
        "ListBuckets": list_buckets,
        "CreateBucket": create_bucket,
        "PutObject": put_object,
        "GetObject": get_object,
        "HeadObject": head_object,
    }
    return Service("s3", RestXmlProtocol(S3), actions, signing=S3_RULES)


def test_boto3_s3_against_the_edge_path_style() -> None:
    buckets: dict[str, dict[str, dict[str, Any]]] = {}
    services = [_rbin_service({}), _s3_service(buckets)]
    app = build_edge(services, _lookup, ["eu-west-1"], state=None)
    with live_server(app) as url:
        s3 = _client("s3", url, s3={"addressing_style": "path"})
        s3.create_bucket(
            Bucket="images", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["images"]
        key = "disks/a b+c%/ü..//x.raw"
        put = s3.put_object(
            Bucket="images",
            Key=key,
            Body=DISK,
            ContentType="application/x-raw",
            Metadata={"Owner": "team-a"},
        )
        assert put["ETag"] == f'"{hashlib.md5(DISK).hexdigest()}"'
        assert key in buckets["images"]
        got = s3.get_object(Bucket="images", Key=key)
        assert got["Body"].read() == DISK
        assert (got["ContentType"], got["ContentLength"], got["Metadata"]) == (
            "application/x-raw",
            len(DISK),
            {"owner": "team-a"},
        )
        assert got["LastModified"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=tzutc())
        head = s3.head_object(Bucket="images", Key=key)
        assert head["ContentLength"] == len(DISK)
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="images", Key="missing")
        assert e.value.response["Error"]["Code"] == "NoSuchKey"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="images", Key="missing")
        assert e.value.response["Error"]["Code"] == "404"
        with pytest.raises(ClientError) as e:
            s3.get_bucket_tagging(Bucket="images")
        assert e.value.response["Error"]["Code"] == "NotImplemented"
        with urlopen(f"{url}/healthz") as health:  # unsigned: still the health check
            assert health.read() == b"ok"
