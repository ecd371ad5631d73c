"""The Query protocols (EC2's flavour and plain AWS Query), generated from botocore's model.

``QueryProtocol.parse`` inverts ``botocore.serialize.EC2Serializer`` (``ec2=True``) or
``QuerySerializer``: it turns the form a client sent (``Filter.1.Name=name&Filter.1.Value.1=web*``)
into a dict keyed by the model's member names (``{"Filters": [{"Name": "name", "Values":
["web*"]}]}``) with typed scalars (bool, int, float, datetime, bytes for blobs). Rendering is
kiln/aws/xml.py. The flavours differ only in names and lists:

* EC2: a member is sent as its ``queryName``, else its ``locationName`` capitalised, else the
  member name; every list is flattened (``ImageId.1``).
* Query: a member is sent as its ``locationName``, else the member name; a list is
  ``Name.member.N`` unless the model flattens it; a map ``Name.entry.N.key``/``.value``; an
  empty list is sent as ``Name=``.

See docs/ec2-protocol.md#parsing-the-query-form.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qs

from botocore.model import OperationModel, ServiceModel, Shape

from kiln import errors
from kiln.aws import bounds, xml
from kiln.aws.bounds import Limits
from kiln.aws.model import find_operation, operation_names
from kiln.aws.wire import Call, Params, Rendered, WireRequest
from kiln.errors import KilnError

RESERVED_PARAMS = frozenset(
    {
        "Action",
        "Version",
        # SigV4 presigned-query authentication, verified by kiln.aws.sigv4, not operation input
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    }
)

_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_ENUM_LISTED = 20


def decode_form(raw: bytes | str) -> dict[str, list[str]]:
    """``application/x-www-form-urlencoded`` bytes (a body or a query string) -> key: values.

    Invalid UTF-8 (raw or percent-encoded) is InvalidParameterValue, never silently replaced."""
    try:
        decoded = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qs(decoded, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise KilnError(
            errors.InvalidParameterValue, "The request contains bytes that are not valid UTF-8."
        ) from None


def unknown_action(action: str) -> KilnError:
    return KilnError(
        errors.InvalidAction, f"The action {action[:128]} is not valid for this web service."
    )


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


def _join(path: str, segment: str) -> str:
    return f"{path}.{segment}" if path else segment


def _unknown(path: str) -> KilnError:
    return KilnError(errors.UnknownParameter, f"The parameter {path[:256]} is not recognized")


def _invalid(value: str, path: str, expected: str) -> KilnError:
    return KilnError(
        errors.InvalidParameterValue, f"Value ({value}) for parameter {path} is invalid. {expected}"
    )


def wire_name(member_name: str, member: Shape, ec2: bool) -> str:
    """The name of a structure member in the query form (the serializer's rule)."""
    serialization = member.serialization
    if ec2:
        if "queryName" in serialization:
            return str(serialization["queryName"])
        if "name" in serialization:
            name = str(serialization["name"])
            return name[0].upper() + name[1:]
        return member_name
    if (
        member.type_name == "list"
        and serialization.get("flattened")
        and member.member.serialization.get("name")
    ):
        return str(member.member.serialization["name"])
    return str(serialization.get("name", member_name))


@lru_cache(maxsize=4096)
def _members(shape: Shape, ec2: bool) -> dict[str, tuple[str, Shape]]:
    """For a structure shape: query-form name -> (member name, member shape)."""
    return {wire_name(name, member, ec2): (name, member) for name, member in shape.members.items()}


@dataclass(frozen=True, slots=True)
class QueryProtocol:
    """The Query protocol of one service: ``Action``/``Version`` form in, XML out."""

    model: ServiceModel
    ec2: bool
    limits: Limits = Limits()

    @property
    def api_version(self) -> str:
        return str(self.model.metadata["apiVersion"])

    @property
    def namespace(self) -> str:
        if self.ec2:  # EC2 answers with a trailing slash its model's xmlNamespace lacks
            return f"http://ec2.amazonaws.com/doc/{self.api_version}/"
        return str(self.model.metadata.get("xmlNamespace", ""))

    @property
    def content_type(self) -> str:
        return "text/xml;charset=UTF-8" if self.ec2 else "text/xml"

    def operation_names(self) -> frozenset[str]:
        return operation_names(self.model)

    def decode(self, request: WireRequest, served: Collection[str]) -> Call:
        form = decode_form(request.query_string)
        if request.method == "POST":
            form.update(decode_form(request.body))
        action = _single(form, "Action")
        version = _single(form, "Version")
        if version != self.api_version:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Value ({version[:64]}) for parameter Version is invalid. This "
                f"endpoint speaks {self.model.service_name.upper()} API version "
                f"{self.api_version} only.",
            )
        if action not in served:
            raise unknown_action(action)
        return Call(action, self.parse(action, form))

    def operation(self, action: str) -> OperationModel:
        op = find_operation(self.model, action)
        if op is None:
            raise unknown_action(action)
        return op

    def parse(self, action: str, form: Mapping[str, list[str]]) -> Params:
        """Decode the form of ``action`` into a dict keyed by the input shape's members.

        :raises KilnError: InvalidAction (not an action of the model), UnknownParameter (a name
            the action does not have), MissingParameter (a member the model marks required),
            InvalidParameterValue (a value of the wrong type or outside the member's enum).
        """
        op = self.operation(action)
        tree = _tree(form)
        if op.input_shape is None:
            for name in tree.children:
                raise _unknown(name)
            return {}
        return self._structure(op.input_shape, tree, "")

    def render(self, operation: str, result: Mapping[str, object], request_id: str) -> Rendered:
        body = xml.render_result(
            self.operation(operation), self.namespace, result, request_id, ec2=self.ec2
        )
        return Rendered(body, self.content_type)

    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        if self.ec2:
            return Rendered(xml.ec2_error(code, message, request_id), self.content_type)
        return Rendered(
            xml.query_error(code, message, status, request_id, self.namespace), self.content_type
        )

    # --- parsing ---------------------------------------------------------------------------
    def _structure(self, shape: Shape, node: _Node, path: str) -> Params:
        if node.value is not None:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Parameter {path} is a structure; send its members as {path}.Member=value.",
            )
        members = _members(shape, self.ec2)
        out: Params = {}
        for segment, child in node.children.items():
            found = members.get(segment)
            if found is None:
                raise _unknown(_join(path, segment))
            name, member = found
            out[name] = self._value(member, child, _join(path, segment))
        for required in shape.required_members:
            if required not in out:
                wire = wire_name(required, shape.members[required], self.ec2)
                raise KilnError(
                    errors.MissingParameter,
                    f"The request must contain the parameter {_join(path, wire)}",
                )
        return out

    def _value(self, shape: Shape, node: _Node, path: str) -> object:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, node, path)
        if kind == "list":
            return self._list(shape, node, path)
        if kind == "map" and not self.ec2:
            return self._map(shape, node, path)
        for segment in node.children:
            raise _unknown(f"{path}.{segment}")
        assert node.value is not None  # a leaf without children always carries a value
        return self._scalar(shape, node.value, path)

    def _list(self, shape: Shape, node: _Node, path: str) -> list[object]:
        if not self.ec2 and node.value == "" and not node.children:
            return []  # QuerySerializer sends an empty list as ``Name=``
        if node.value is not None:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Parameter {path} is a list; send it as {path}.1, {path}.2, ...",
            )
        if not self.ec2 and not shape.serialization.get("flattened"):
            tag = str(shape.member.serialization.get("name", "member"))
            node = self._only_child(node, tag, path)
            path = f"{path}.{tag}"
        indexed: list[tuple[int, object]] = []
        for segment, child in node.children.items():
            if not segment.isdigit():
                raise _unknown(f"{path}.{segment}")
            indexed.append((int(segment), self._value(shape.member, child, f"{path}.{segment}")))
        bounds.check_list(self.limits, shape, len(indexed), path)
        return [value for _, value in sorted(indexed, key=lambda pair: pair[0])]

    def _map(self, shape: Shape, node: _Node, path: str) -> dict[str, object]:
        if not shape.serialization.get("flattened"):
            node = self._only_child(node, "entry", path)
            path = f"{path}.entry"
        key_tag = str(shape.key.serialization.get("name", "key"))
        value_tag = str(shape.value.serialization.get("name", "value"))
        out: dict[str, object] = {}
        for segment, entry in node.children.items():
            where = f"{path}.{segment}"
            if not segment.isdigit() or set(entry.children) - {key_tag, value_tag}:
                raise _unknown(where)
            key_node = entry.children.get(key_tag)
            if key_node is None or key_node.value is None:
                raise KilnError(
                    errors.MissingParameter,
                    f"The request must contain the parameter {where}.{key_tag}",
                )
            key = str(self._scalar(shape.key, key_node.value, f"{where}.{key_tag}"))
            value_node = entry.children.get(value_tag, _Node(value=""))
            out[key] = self._value(shape.value, value_node, f"{where}.{value_tag}")
        return out

    @staticmethod
    def _only_child(node: _Node, tag: str, path: str) -> _Node:
        for segment in node.children:
            if segment != tag:
                raise _unknown(f"{path}.{segment}")
        return node.children.get(tag, _Node())

    def _scalar(self, shape: Shape, value: str, path: str) -> object:
        kind = shape.type_name
        if kind == "string":
            if xml.XML_INVALID_RE.search(value):
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"Value for parameter {path} contains characters that are not allowed.",
                )
            enum = shape.enum
            if enum and value not in enum:
                listed = (
                    f" Valid values: {', '.join(enum)}." if len(enum) <= _MAX_ENUM_LISTED else ""
                )
                raise _invalid(value[:256], path, f"Unsupported value.{listed}".rstrip())
            bounds.check_string(self.limits, shape, value, path)
            return value
        if kind in ("integer", "long"):
            if len(value) > 64 or not _INT_RE.fullmatch(value):
                raise _invalid(value[:64], path, "Expected an integer.")
            number = int(value)
            bounds.check_integer(self.limits, shape, number, path)
            return number
        if kind == "boolean":
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise _invalid(value[:64], path, "Expected true or false.")
            return lowered == "true"
        if kind in ("float", "double"):
            try:
                real = float(value)
            except ValueError:
                raise _invalid(value[:64], path, "Expected a number.") from None
            if not math.isfinite(real):
                raise _invalid(value[:64], path, "Expected a finite number.")
            bounds.check_number(self.limits, shape, real, path)
            return real
        if kind == "timestamp":
            return _parse_timestamp(value, path)
        if kind == "blob":
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _invalid(value[:64], path, "Expected base64-encoded data.") from None
        raise AssertionError(f"model type {kind!r} of {path} is not handled")


def _parse_timestamp(value: str, path: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(
            value[:64], path, "Expected an ISO 8601 timestamp such as 2026-11-23T10:00:00.000Z."
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _single(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    if not values or not values[-1]:
        raise KilnError(errors.MissingParameter, f"The request must contain the parameter {name}")
    return values[-1]
