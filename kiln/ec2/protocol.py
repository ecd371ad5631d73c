"""The EC2 Query protocol, generated from botocore's model: form -> params dict, result -> XML.

``parse_query`` inverts ``botocore.serialize.EC2Serializer``: it turns the form a client sent
(``Filter.1.Name=name&Filter.1.Value.1=web*``) into a dict keyed by the model's member names
(``{"Filters": [{"Name": "name", "Values": ["web*"]}]}``) with typed scalars (bool, int, float,
datetime, bytes for blobs). ``render_result`` renders a dict keyed the same way as EC2's XML, which
botocore's ``EC2QueryParser`` reads back unchanged. See docs/ec2-protocol.md.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qs

from botocore.model import Shape

from kiln import errors
from kiln.ec2 import bounds
from kiln.ec2.shapes import (
    LIST_ITEM,
    XML_NAMESPACE,
    operation,
    query_members,
    query_name,
    xml_name,
)
from kiln.errors import Ec2Error

Params = dict[str, object]
"""Parsed request parameters: member name -> str | int | float | bool | datetime | bytes |
list | dict (nested the same way). Absent members are absent, never None."""

RESERVED_PARAMS = frozenset({
    "Action", "Version",
    # SigV4 presigned-query authentication, verified by kiln.ec2.sigv4, not operation input
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
})

_INT_RE = re.compile(r"[+-]?[0-9]+")
# Characters XML 1.0 cannot carry (even escaped).
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_SPECIAL_RE = re.compile("[&<>\r]|" + _XML_INVALID_RE.pattern)
_MAX_ENUM_LISTED = 20


# --- form decoding ---------------------------------------------------------------------------
def decode_form(raw: bytes | str) -> dict[str, list[str]]:
    """``application/x-www-form-urlencoded`` bytes (a body or a query string) -> key: values.

    Invalid UTF-8 (raw or percent-encoded) is InvalidParameterValue, never silently replaced."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qs(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise Ec2Error(errors.InvalidParameterValue,
                       "The request contains bytes that are not valid UTF-8.") from None


# --- parsing ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Node:
    """One dotted path segment of the form: ``Filter`` -> ``1`` -> ``Name``."""

    value: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(form: Mapping[str, list[str]]) -> _Node:
    root = _Node()
    for key, values in form.items():
        if key in RESERVED_PARAMS or not values:
            continue
        node = root
        for segment in key.split("."):
            node = node.children.setdefault(segment, _Node())
        node.value = values[-1]
    return root


def parse_query(action: str, form: Mapping[str, list[str]]) -> Params:
    """Decode the EC2 Query form of ``action`` into a dict keyed by the input shape's members.

    :raises Ec2Error: InvalidAction (not an EC2 action), UnknownParameter (a name the action does
        not have), MissingParameter (a member the model marks required), InvalidParameterValue
        (a value of the wrong type or outside the member's enum).
    """
    op = operation(action)
    if op is None:
        raise Ec2Error(errors.InvalidAction, f"The action {action[:128]} is not valid for this web service.")
    tree = _tree(form)
    if op.input_shape is None:
        for name in tree.children:
            raise _unknown(name)
        return {}
    return _parse_structure(op.input_shape, tree, "")


def _unknown(path: str) -> Ec2Error:
    return Ec2Error(errors.UnknownParameter, f"The parameter {path[:256]} is not recognized")


def _join(path: str, segment: str) -> str:
    return f"{path}.{segment}" if path else segment


def _parse_structure(shape: Shape, node: _Node, path: str) -> Params:
    if node.value is not None:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Parameter {path} is a structure; send its members as {path}.Member=value.")
    members = query_members(shape)
    out: Params = {}
    for segment, child in node.children.items():
        found = members.get(segment)
        if found is None:
            raise _unknown(_join(path, segment))
        name, member = found
        out[name] = _parse_value(member, child, _join(path, segment))
    for required in shape.required_members:
        if required not in out:
            wire = query_name(required, shape.members[required])
            raise Ec2Error(errors.MissingParameter,
                           f"The request must contain the parameter {_join(path, wire)}")
    return out


def _parse_value(shape: Shape, node: _Node, path: str) -> object:
    kind = shape.type_name
    if kind == "structure":
        return _parse_structure(shape, node, path)
    if kind == "list":
        return _parse_list(shape, node, path)
    for segment in node.children:
        raise _unknown(f"{path}.{segment}")
    assert node.value is not None  # a leaf without children always carries a value
    return _parse_scalar(shape, node.value, path)


def _parse_list(shape: Shape, node: _Node, path: str) -> list[object]:
    if node.value is not None:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Parameter {path} is a list; send it as {path}.1, {path}.2, ...")
    indexed: list[tuple[int, object]] = []
    for segment, child in node.children.items():
        if not segment.isdigit():
            raise _unknown(f"{path}.{segment}")
        indexed.append((int(segment), _parse_value(shape.member, child, f"{path}.{segment}")))
    bounds.check_list(shape, len(indexed), path)
    return [value for _, value in sorted(indexed, key=lambda pair: pair[0])]


def _invalid(value: str, path: str, expected: str) -> Ec2Error:
    return Ec2Error(errors.InvalidParameterValue,
                    f"Value ({value}) for parameter {path} is invalid. {expected}")


def _parse_scalar(shape: Shape, value: str, path: str) -> object:
    kind = shape.type_name
    if kind == "string":
        if _XML_INVALID_RE.search(value):
            raise Ec2Error(errors.InvalidParameterValue,
                           f"Value for parameter {path} contains characters that are not allowed.")
        enum = shape.enum
        if enum and value not in enum:
            listed = f" Valid values: {', '.join(enum)}." if len(enum) <= _MAX_ENUM_LISTED else ""
            raise _invalid(value[:256], path, f"Unsupported value.{listed}".rstrip())
        bounds.check_string(shape, value, path)
        return value
    if kind in ("integer", "long"):
        if len(value) > 64 or not _INT_RE.fullmatch(value):
            raise _invalid(value[:64], path, "Expected an integer.")
        number = int(value)
        bounds.check_integer(shape, number, path)
        return number
    if kind == "boolean":
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise _invalid(value[:64], path, "Expected true or false.")
        return lowered == "true"
    if kind in ("float", "double"):
        try:
            number = float(value)
        except ValueError:
            raise _invalid(value[:64], path, "Expected a number.") from None
        if not math.isfinite(number):
            raise _invalid(value[:64], path, "Expected a finite number.")
        bounds.check_number(shape, number, path)
        return number
    if kind == "timestamp":
        return _parse_timestamp(value, path)
    if kind == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(value[:64], path, "Expected base64-encoded data.") from None
    raise AssertionError(f"EC2 model type {kind!r} of {path} is not handled")


def _parse_timestamp(value: str, path: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(value[:64], path, "Expected an ISO 8601 timestamp such as "
                                    "2026-11-23T10:00:00.000Z.") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- rendering -------------------------------------------------------------------------------
def format_timestamp(value: datetime) -> str:
    """EC2's timestamp text: UTC, milliseconds, ``Z`` (``2026-11-23T10:00:00.000Z``).

    A naive datetime is taken to be UTC. Handlers use this for the many EC2 members the model
    types as strings but fills with timestamps (``Image.CreationDate``, ``DeprecationTime``)."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _text(value: str) -> str:
    if _XML_SPECIAL_RE.search(value) is None:
        return value
    value = _XML_INVALID_RE.sub("\ufffd", value)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def render_result(action: str, result: Mapping[str, object], request_id: str) -> bytes:
    """``result`` (keyed by the output shape's member names) as EC2's XML response body.

    None members are omitted; an empty list is rendered as an empty element. Actions without an
    output shape answer ``<return>true</return>`` as EC2 does (``result`` must then be empty).

    :raises ValueError: a key the output shape lacks, or a value of the wrong Python type — a bug
        in the handler, which the server turns into InternalError.
    """
    op = operation(action)
    if op is None:
        raise ValueError(f"{action} is not an EC2 action")
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
           f'<{action}Response xmlns="{XML_NAMESPACE}">',
           f"<requestId>{_text(request_id)}</requestId>"]
    if op.output_shape is None:
        if any(value is not None for value in result.values()):
            raise ValueError(f"{action} has no output members, got {sorted(result)}")
        out.append("<return>true</return>")
    else:
        _render_members(op.output_shape, result, out, action)
    out.append(f"</{action}Response>")
    return "".join(out).encode("utf-8")


@lru_cache(maxsize=4096)
def _output_members(shape: Shape) -> dict[str, tuple[int, str, Shape]]:
    """For an output structure: member name -> (position in the model, XML tag, shape)."""
    return {name: (index, xml_name(name, member), member)
            for index, (name, member) in enumerate(shape.members.items())}


def _render_members(shape: Shape, value: object, out: list[str], path: str) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: expected a mapping for {shape.name}, got {type(value).__name__}")
    members = _output_members(shape)
    present: list[tuple[int, str, Shape, str, object]] = []
    for name, item in value.items():
        found = members.get(name)
        if found is None:
            raise ValueError(f"{path}: {shape.name} has no member {name!r}")
        if item is not None:
            present.append((*found, name, item))
    present.sort(key=lambda entry: entry[0])  # the model's order, as EC2 writes them
    for _, tag, member, name, item in present:
        out.append(f"<{tag}>")
        _render_value(member, item, out, path, name)
        out.append(f"</{tag}>")


def _render_value(shape: Shape, value: object, out: list[str], path: str, name: str) -> None:
    # ``path`` + ``name`` locate the value in error messages; joined only when one is raised.
    kind = shape.type_name
    if kind == "structure":
        _render_members(shape, value, out, f"{path}.{name}")
    elif kind == "list":
        if not isinstance(value, list | tuple):
            raise ValueError(f"{path}.{name}: expected a list, got {type(value).__name__}")
        for element in value:
            if element is None:
                continue
            out.append(f"<{LIST_ITEM}>")
            _render_value(shape.member, element, out, path, f"{name}[]")
            out.append(f"</{LIST_ITEM}>")
    else:
        out.append(_text(_scalar_text(kind, value, path, name)))


def _scalar_text(kind: str, value: object, path: str, name: str) -> str:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind in ("float", "double") and isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    if kind == "timestamp" and isinstance(value, datetime):
        return format_timestamp(value)
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise ValueError(f"{path}.{name}: expected {kind}, got {type(value).__name__} {value!r:.80}")


def render_error(code: str, message: str, request_id: str) -> bytes:
    """EC2's error body: ``<Response><Errors><Error><Code>…</Code><Message>…</Message></Error>
    </Errors><RequestID>…</RequestID></Response>``."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{_text(code)}</Code>"
            f"<Message>{_text(message)}</Message></Error></Errors>"
            f"<RequestID>{_text(request_id)}</RequestID></Response>").encode()
