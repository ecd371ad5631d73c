"""The AWS JSON protocol (1.0 and 1.1: KMS, ...), generated from botocore's model.

A request is ``POST /`` with ``X-Amz-Target: <targetPrefix>.<Operation>`` and a JSON object
keyed by the input shape's member names; the answer is a JSON object keyed by the output shape's
members, ``Content-Type: application/x-amz-json-<jsonVersion>``. As botocore's ``JSONSerializer``
and ``JSONParser`` do: timestamps are epoch seconds (a number), blobs base64 strings, ``null`` is
an absent member. Errors are ``{"__type": "NotFoundException", "message": "…"}`` with the code's
HTTP status.

Input, in order: a target naming another service or an operation the service does not serve is
``UnknownOperationException``; a body that is not a JSON object, or a value of the wrong JSON
type, is ``SerializationException``; a missing required member, a value outside its enum or the
model's ``min``/``max`` is ``ValidationException``. Members the shape does not have are ignored,
as AWS's JSON services ignore them (forward compatibility). See docs/aws-edge.md#json.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.model import OperationModel, ServiceModel, Shape

from kiln import errors
from kiln.aws import bounds
from kiln.aws.bounds import Limits
from kiln.aws.model import find_operation, operation_names
from kiln.aws.wire import Call, Params, Rendered, WireRequest
from kiln.errors import ErrorCode, KilnError

JSON_LIMITS = Limits(invalid=errors.ValidationException, check_min=True)
_MAX_ENUM_LISTED = 20


def unknown_operation(target: str) -> KilnError:
    return KilnError(
        errors.UnknownOperation,
        f"The operation {target[:128]!r} is not supported by this endpoint.",
    )


def error_body(code: str, message: str) -> bytes:
    """The JSON protocols' error body."""
    return json.dumps({"__type": code, "message": message}).encode()


def load_document(body: bytes) -> dict[str, object]:
    """A JSON request body as an object (an empty body is ``{}``).

    :raises KilnError: SerializationException: not UTF-8, not JSON, or not an object."""
    try:
        document: object = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise KilnError(
            errors.SerializationException, "The request body is not valid JSON."
        ) from None
    if not isinstance(document, dict):
        raise wrong_type(errors.SerializationException, "", "a JSON object", document)
    return document


def wrong_type(code: ErrorCode, path: str, expected: str, value: object) -> KilnError:
    """A value of the wrong type (or text that does not parse as one)."""
    return KilnError(
        code,
        f"Expected {expected} for {path or 'the request body'}, got "
        f"{type(value).__name__ if value is not None else 'null'}.",
    )


def missing(code: ErrorCode, where: str) -> KilnError:
    """A required member absent, in the JSON services' words."""
    return KilnError(
        code,
        f"1 validation error detected: Value null at '{where}' failed "
        "to satisfy constraint: Member must not be null",
    )


def _validation(code: ErrorCode, path: str, constraint: str) -> KilnError:
    return KilnError(
        code,
        f"1 validation error detected: Value at "
        f"'{path}' failed to satisfy constraint: "
        f"{constraint}",
    )


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass(frozen=True, slots=True)
class JsonProtocol:
    """The JSON protocol of one service: ``X-Amz-Target`` + JSON object in, JSON out."""

    model: ServiceModel
    limits: Limits = JSON_LIMITS

    @property
    def content_type(self) -> str:
        return f"application/x-amz-json-{self.model.metadata.get('jsonVersion', '1.0')}"

    @property
    def target_prefix(self) -> str:
        return str(self.model.metadata["targetPrefix"])

    def operation_names(self) -> frozenset[str]:
        return operation_names(self.model)

    def decode(self, request: WireRequest, served: Collection[str]) -> Call:
        target = request.headers.get("x-amz-target", "")
        prefix, _, name = target.rpartition(".")
        if prefix != self.target_prefix or name not in served:
            raise unknown_operation(target)
        return Call(name, self.parse(name, request.body))

    def operation(self, name: str) -> OperationModel:
        op = find_operation(self.model, name)
        if op is None:
            raise unknown_operation(name)
        return op

    def parse(self, name: str, body: bytes) -> Params:
        """The JSON body of ``name`` as a dict keyed by the input shape's members.

        :raises KilnError: SerializationException, ValidationException (see the module doc)."""
        op = self.operation(name)
        document = load_document(body)
        if op.input_shape is None:
            return {}
        return JsonReader(self.limits).structure(op.input_shape, document, "")

    def render(self, operation: str, result: Mapping[str, object], request_id: str) -> Rendered:
        op = self.operation(operation)
        if op.output_shape is None:
            if any(value is not None for value in result.values()):
                raise ValueError(f"{operation} has no output members, got {sorted(result)}")
            return Rendered(b"{}", self.content_type)
        out = render_value(op.output_shape, result, operation)
        return Rendered(json.dumps(out, separators=(",", ":")).encode(), self.content_type)

    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        return Rendered(error_body(code, message), self.content_type)


@dataclass(frozen=True, slots=True)
class JsonReader:
    """Typed, validated members from JSON values (also from the values the rest protocols take
    out of a URI, a header or XML text): wrong JSON types are ``malformed``, constraint
    violations ``limits.invalid``."""

    limits: Limits = JSON_LIMITS
    malformed: ErrorCode = errors.SerializationException

    def _malformed(self, path: str, expected: str, value: object) -> KilnError:
        return wrong_type(self.malformed, path, expected, value)

    def structure(
        self, shape: Shape, value: object, path: str, located: Params | None = None
    ) -> Params:
        """``value`` (a JSON object) as the members of ``shape``.

        ``located`` are the members a rest protocol already took from the URI, query string or
        headers: members with a ``location`` are then not looked for in ``value``."""
        if not isinstance(value, dict):
            raise self._malformed(path, "an object", value)
        out: Params = dict(located or {})
        for name, member in shape.members.items():
            if located is not None and "location" in member.serialization:
                continue
            wire = str(member.serialization.get("name", name))
            item = value.get(wire)
            if item is not None:
                out[name] = self.value(member, item, _join(path, _lower_first(name)))
        for required in shape.required_members:
            if required not in out:
                where = _join(path, _lower_first(required))
                raise missing(self.limits.invalid, where)
        return out

    def value(self, shape: Shape, value: object, path: str) -> object:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                raise self._malformed(path, "an array", value)
            bounds.check_list(self.limits, shape, len(value), path)
            return [
                self.value(shape.member, v, f"{path}.{i + 1}")
                for i, v in enumerate(value)
                if v is not None
            ]
        if kind == "map":
            if not isinstance(value, dict):
                raise self._malformed(path, "an object", value)
            return {
                str(self.value(shape.key, k, f"{path}.key")): self.value(
                    shape.value, v, f"{path}.{k}"
                )
                for k, v in value.items()
                if v is not None
            }
        return self._scalar(shape, value, path)

    def _scalar(self, shape: Shape, value: object, path: str) -> object:
        kind = shape.type_name
        if kind == "string":
            if not isinstance(value, str):
                raise self._malformed(path, "a string", value)
            enum = shape.enum
            if enum and value not in enum:
                listed = f" [{', '.join(enum)}]" if len(enum) <= _MAX_ENUM_LISTED else ""
                raise _validation(
                    self.limits.invalid, path, f"Member must satisfy enum value set{listed}"
                )
            bounds.check_string(self.limits, shape, value, path)
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self._malformed(path, "a boolean", value)
            return value
        if kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise self._malformed(path, "an integer", value)
            bounds.check_integer(self.limits, shape, value, path)
            return value
        if kind in ("float", "double"):
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise self._malformed(path, "a number", value)
            bounds.check_number(self.limits, shape, float(value), path)
            return float(value)
        if kind == "timestamp":
            if isinstance(value, datetime):  # a rest protocol's header, query or XML text
                return value
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self._malformed(path, "a timestamp (epoch seconds)", value)
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                raise self._malformed(path, "a timestamp (epoch seconds)", value) from None
        if kind == "blob":
            if not isinstance(value, str):
                raise self._malformed(path, "a base64 string", value)
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise self._malformed(path, "a base64 string", value) from None
        raise AssertionError(f"model type {kind!r} of {path} is not handled")


def _join(path: str, segment: str) -> str:
    return f"{path}.{segment}" if path else segment


# --- rendering -------------------------------------------------------------------------------
def render_value(shape: Shape, value: object, path: str) -> object:
    """``value`` as the JSON value of ``shape`` (the inverse of :class:`JsonReader`).

    :raises ValueError: ``value`` does not fit ``shape`` (a handler bug)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{path}: expected a mapping for {shape.name}, got {type(value).__name__}"
            )
        out: dict[str, object] = {}
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                raise ValueError(f"{path}: {shape.name} has no member {name!r}")
            if item is not None:
                out[str(member.serialization.get("name", name))] = render_value(
                    member, item, f"{path}.{name}"
                )
        return out
    if kind == "list":
        if not isinstance(value, list | tuple):
            raise ValueError(f"{path}: expected a list, got {type(value).__name__}")
        return [render_value(shape.member, v, f"{path}[]") for v in value if v is not None]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise ValueError(f"{path}: expected a mapping, got {type(value).__name__}")
        return {
            str(k): render_value(shape.value, v, f"{path}{{}}")
            for k, v in value.items()
            if v is not None
        }
    return _render_scalar(kind, value, path)


def _render_scalar(kind: str, value: object, path: str) -> object:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        kind in ("float", "double")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return float(value)
    if kind == "timestamp" and isinstance(value, datetime):
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return round(utc.timestamp(), 3)
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise ValueError(f"{path}: expected {kind}, got {type(value).__name__} {value!r:.80}")
