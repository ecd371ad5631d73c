"""What rest-json and rest-xml share: routes from ``http.requestUri``, members outside the body.

A route is an operation's ``http.method`` and ``http.requestUri`` template: ``/rules/{identifier}``
(a label matches one path segment), ``/{Bucket}/{Key+}`` (a greedy label matches the rest of the
path, slashes included), ``/{Bucket}?tagging`` or ``?list-type=2`` (literal query keys that must be
present, with that value if one is given). Where several operations match, the most specific
wins: more literal query keys, then more required query/header members present (S3's
``UploadPart`` over ``PutObject``, ``CopyObject`` over ``PutObject``), then more literal path.
Labels are percent-decoded after matching, so ``%2F`` inside a label is a ``/`` of the value.

Members with a ``location`` come from outside the body, as botocore's ``BaseRestSerializer``
writes them: ``uri`` (a label), ``querystring`` (a list is the key repeated; a map takes every
key no other member claims), ``header`` (a list is comma-separated, ``"``-quoted where needed),
``headers`` (a map of every header with the member's prefix; HTTP header names are
case-insensitive, so the keys arrive lower-cased). Their text is typed by the model — integers,
``true``/``false``, finite numbers, timestamps as epoch seconds, ISO 8601 or an RFC 1123 HTTP
date (whichever the text is; botocore writes ISO 8601 in query strings and HTTP dates in
headers unless the member says ``timestampFormat``) — and then validated by
:class:`kiln.aws.json.JsonReader` like a JSON value. Rendering is the inverse: ``header`` and
``headers`` output members become response headers, ``statusCode`` the status.
See docs/aws-edge.md#rest-json-and-rest-xml.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from urllib.parse import unquote

from botocore.model import OperationModel, ServiceModel, Shape

from kiln.aws import xml
from kiln.aws.json import JsonReader, render_value, wrong_type
from kiln.aws.model import operation_names
from kiln.aws.query import RESERVED_PARAMS, decode_form
from kiln.aws.wire import Call, Params, WireRequest
from kiln.errors import KilnError

_LABEL_RE = re.compile(r"\{([^}+]+)(\+?)\}")
_INT_RE = re.compile(r"[+-]?[0-9]{1,40}")
_HEADER_UNSAFE_RE = re.compile(r"[\r\n\x00]")
Form = Mapping[str, list[str]]


@dataclass(frozen=True, slots=True)
class Route:
    """One operation's method and ``requestUri`` template, compiled."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]
    query: tuple[tuple[str, str | None], ...]
    required: tuple[tuple[str, str], ...]
    literal: int
    deprecated: bool

    def matches(self, method: str, path: str, form: Form, headers: Mapping[str, str]) -> bool:
        if method != self.method or self.pattern.fullmatch(path) is None:
            return False
        for key, value in self.query:
            if key not in form or (value is not None and form[key][-1] != value):
                return False
        return all(
            (name in form) if location == "querystring" else (name in headers)
            for location, name in self.required
        )

    def specificity(self) -> tuple[int, int, int]:
        return len(self.query), len(self.required), self.literal

    def label_values(self, path: str) -> dict[str, str]:
        found = self.pattern.fullmatch(path)
        assert found is not None  # only asked of a route that matched
        return {name: found.group(i + 1) for i, name in enumerate(self.labels)}


def _compile(op: OperationModel) -> Route:
    template = str(op.http["requestUri"])
    path, _, query = template.partition("?")
    labels: list[str] = []
    pattern, literal, last = "", 0, 0
    for label in _LABEL_RE.finditer(path):
        pattern += re.escape(path[last : label.start()])
        literal += label.start() - last
        pattern += "(.+)" if label.group(2) else "([^/]+)"
        labels.append(label.group(1))
        last = label.end()
    pattern += re.escape(path[last:])
    literal += len(path) - last
    literals = tuple(
        (key, value if sep else None)
        for key, sep, value in (part.partition("=") for part in query.split("&") if part)
    )
    return Route(
        op.name,
        str(op.http.get("method", "POST")),
        re.compile(pattern),
        tuple(labels),
        literals,
        _required_outside_body(op),
        literal,
        bool(op.deprecated),
    )


def _required_outside_body(op: OperationModel) -> tuple[tuple[str, str], ...]:
    shape = op.input_shape
    if shape is None:
        return ()
    out: list[tuple[str, str]] = []
    for name in shape.required_members:
        serialization = shape.members[name].serialization
        location = serialization.get("location")
        if location in ("querystring", "header") and "name" in serialization:
            wire = str(serialization["name"])
            out.append((location, wire if location == "querystring" else wire.lower()))
    return tuple(out)


@cache
def routes(model: ServiceModel) -> tuple[Route, ...]:
    """Every operation of ``model`` as a route."""
    return tuple(_compile(model.operation_model(name)) for name in sorted(operation_names(model)))


def match(
    model: ServiceModel,
    request: WireRequest,
    form: Form,
    served: Collection[str],
) -> Route | None:
    """The most specific route of ``model`` that the request's method and raw path match; of
    equally specific ones (S3's deprecated aliases such as ``GetBucketLifecycle``), one that is
    served, then one that is not deprecated."""
    found = [
        r for r in routes(model) if r.matches(request.method, request.path, form, request.headers)
    ]
    return max(
        found,
        key=lambda r: (*r.specificity(), r.operation in served, not r.deprecated),
        default=None,
    )


BodyReader = Callable[[Shape, bytes, Params | None], Params]
"""A protocol's body parser: (structure shape, body, the members already located or None for a
payload structure) -> the structure's members."""
Unknown = Callable[[str, str | None], KilnError]
"""A protocol's unknown-operation error: (``METHOD /path``, the operation matched but not
served, or None when nothing matched)."""


def decode(
    model: ServiceModel,
    request: WireRequest,
    served: Collection[str],
    reader: JsonReader,
    body: BodyReader,
    unknown: Unknown,
) -> Call:
    """The call a rest request makes: route, located members, then the body (or payload)."""
    form = decode_form(request.query_string)
    route = match(model, request, form, served)
    if route is None or route.operation not in served:
        where = f"{request.method} {request.path[:256]}"
        raise unknown(where, route.operation if route is not None else None)
    op = model.operation_model(route.operation)
    shape = op.input_shape
    if shape is None:
        return Call(op.name, {})
    located = located_members(op, route, request.path, form, request.headers, reader)
    payload = shape.serialization.get("payload")
    if payload is None:
        return Call(op.name, body(shape, request.body, located))
    member = shape.members[payload]
    if member.type_name == "blob":
        located[payload] = request.body
    elif member.type_name == "string" and request.body:
        located[payload] = _utf8(request.body, payload, reader)
    elif member.type_name == "structure" and request.body.strip():
        located[payload] = body(member, request.body, None)
    return Call(op.name, reader.structure(shape, {}, "", located=located))


def _utf8(body: bytes, path: str, reader: JsonReader) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise wrong_type(reader.malformed, path, "UTF-8 text", body[:40]) from None


# --- members outside the body --------------------------------------------------------------
def located_members(
    op: OperationModel,
    route: Route,
    path: str,
    form: Form,
    headers: Mapping[str, str],
    reader: JsonReader,
) -> Params:
    """The input members of ``op`` that live in the URI, the query string or the headers."""
    shape = op.input_shape
    if shape is None:
        return {}
    labels = route.label_values(path)
    claimed = {key for key, _ in route.query} | RESERVED_PARAMS
    claimed |= {
        str(m.serialization.get("name", n))
        for n, m in shape.members.items()
        if m.serialization.get("location") == "querystring" and m.type_name != "map"
    }
    out: Params = {}
    for name, member in shape.members.items():
        wire = str(member.serialization.get("name", name))
        raw = _raw(member, wire, labels, form, headers, claimed, reader)
        if raw is not None:
            out[name] = reader.value(member, _typed(member, raw, wire, reader), wire)
    return out


Raw = str | list[str] | dict[str, str] | dict[str, list[str]]


def _raw(
    member: Shape,
    wire: str,
    labels: Mapping[str, str],
    form: Form,
    headers: Mapping[str, str],
    claimed: set[str],
    reader: JsonReader,
) -> Raw | None:
    location = member.serialization.get("location")
    if location == "uri":
        return _percent_decoded(labels[wire], wire, reader) if wire in labels else None
    if location == "querystring":
        if member.type_name == "map":
            return _query_map(member, form, claimed)
        values = form.get(wire)
        if not values:
            return None
        return values if member.type_name == "list" else values[-1]
    if location == "header":
        value = headers.get(wire.lower())
        if value is None or (member.type_name == "list" and not value.strip()):
            return None
        return split_header_list(value) if member.type_name == "list" else value
    if location == "headers":
        prefix = wire.lower()
        found = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
        return found or None
    return None


def _query_map(member: Shape, form: Form, claimed: set[str]) -> Raw | None:
    many = member.value.type_name == "list"
    found: dict[str, list[str]] | dict[str, str]
    if many:
        found = {k: v for k, v in form.items() if k not in claimed}
    else:
        found = {k: v[-1] for k, v in form.items() if k not in claimed and v}
    return found or None


def _percent_decoded(value: str, wire: str, reader: JsonReader) -> str:
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise wrong_type(reader.malformed, wire, "UTF-8 text", value) from None


def split_header_list(value: str) -> list[str]:
    """A comma-separated header as botocore writes a list (``"a,b",c`` -> ``['a,b', 'c']``)."""
    items: list[str] = []
    current, quoted, escaped = "", False, False
    for char in value:
        if escaped:
            current, escaped = current + char, False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items


def _typed(member: Shape, raw: Raw, wire: str, reader: JsonReader) -> object:
    if isinstance(raw, dict):
        inner = member.value
        return {k: _typed(inner, v, f"{wire}.{k}", reader) for k, v in raw.items()}
    if isinstance(raw, list):
        return [text_value(member.member, v, f"{wire}.{i + 1}", reader) for i, v in enumerate(raw)]
    return text_value(member, raw, wire, reader)


def text_value(shape: Shape, text: str, path: str, reader: JsonReader) -> object:
    """``text`` (a label, a query value, a header, XML character data) as the JSON-like value
    :meth:`JsonReader.value` validates; text that is not of the shape's type is
    ``reader.malformed``."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        if not _INT_RE.fullmatch(text.strip()):
            raise wrong_type(reader.malformed, path, "an integer", text)
        return int(text)
    if kind == "boolean":
        if text.strip() not in ("true", "false"):
            raise wrong_type(reader.malformed, path, "true or false", text)
        return text.strip() == "true"
    if kind in ("float", "double"):
        try:
            number = float(text)
        except ValueError:
            raise wrong_type(reader.malformed, path, "a number", text) from None
        if not math.isfinite(number):
            raise wrong_type(reader.malformed, path, "a finite number", text)
        return number
    if kind == "timestamp":
        return parse_timestamp(text, path, reader)
    return text  # strings, and blobs as base64 (decoded by the reader)


def parse_timestamp(text: str, path: str, reader: JsonReader) -> datetime:
    """Epoch seconds, ISO 8601 or an RFC 1123 HTTP date, as an aware UTC datetime."""
    value = text.strip()
    try:
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value) if value[:1].isdigit() else None
        if parsed is None:
            parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):
        raise wrong_type(reader.malformed, path, "a timestamp", text) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- rendering -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Split:
    """An output split by where its members go."""

    headers: dict[str, str]
    body: dict[str, object]
    status: int | None


def prepare_output(
    model: ServiceModel, operation: str, result: Mapping[str, object]
) -> tuple[OperationModel, Split, int]:
    """The operation, its ``result`` split (:func:`split_output`) and the status to answer with
    (a ``statusCode`` member, else the model's ``http.responseCode``, else 200).

    :raises ValueError: not an operation of ``model``, or ``result`` does not fit its output."""
    if operation not in operation_names(model):
        raise ValueError(f"{operation} is not an operation of {model.service_name}")
    op = model.operation_model(operation)
    split = split_output(op.output_shape, result, operation)
    return op, split, split.status or int(op.http.get("responseCode", 200))


def split_output(shape: Shape | None, result: Mapping[str, object], path: str) -> Split:
    """``result`` (keyed by the output shape's members): header members as header text,
    ``statusCode`` as the status, the rest left for the body.

    :raises ValueError: a member the shape lacks, or a value of the wrong type."""
    out = Split({}, {}, None)
    for name, value in result.items():
        if value is None:
            continue
        member = shape.members.get(name) if shape is not None else None
        if member is None:
            raise ValueError(f"{path}: the output has no member {name!r}")
        location = member.serialization.get("location")
        wire = str(member.serialization.get("name", name))
        if location == "header":
            out.headers[wire] = header_text(member, value, f"{path}.{name}")
        elif location == "headers":
            if not isinstance(value, Mapping):
                raise ValueError(f"{path}.{name}: expected a mapping, got {type(value).__name__}")
            for key, item in value.items():
                out.headers[f"{wire}{key}"] = header_text(member.value, item, f"{path}.{name}")
        elif location == "statusCode":
            out = Split(out.headers, out.body, int(str(render_value(member, value, path))))
        else:
            out.body[name] = value
    return out


def header_text(shape: Shape, value: object, path: str) -> str:
    """One output value as header text (a list comma-joined, quoted as botocore splits it)."""
    if shape.type_name == "list":
        if not isinstance(value, list | tuple):
            raise ValueError(f"{path}: expected a list, got {type(value).__name__}")
        return ",".join(_quoted(header_text(shape.member, v, path)) for v in value)
    native = render_value(shape, value, path)
    if shape.type_name == "timestamp":
        assert isinstance(native, float)
        text = _timestamp_text(shape, datetime.fromtimestamp(native, UTC))
    elif isinstance(native, bool):
        text = "true" if native else "false"
    else:
        text = str(native)
    if _HEADER_UNSAFE_RE.search(text) or not text.isascii():
        raise ValueError(f"{path}: {text[:40]!r} cannot be sent as an HTTP header")
    return text


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"' if '"' in text or "," in text else text


def _timestamp_text(shape: Shape, value: datetime) -> str:
    fmt = shape.serialization.get("timestampFormat", "rfc822")
    if fmt == "iso8601":
        return xml.format_timestamp(value)
    if fmt == "unixTimestamp":
        return str(round(value.timestamp(), 3))
    return format_datetime(value, usegmt=True)


def payload_bytes(shape: Shape, value: object, path: str) -> bytes:
    """A ``blob`` or ``string`` payload member as the body itself."""
    if shape.type_name == "blob" and isinstance(value, bytes | bytearray):
        return bytes(value)
    if shape.type_name == "string" and isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"{path}: expected {shape.type_name} payload, got {type(value).__name__}")
