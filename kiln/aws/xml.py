"""Results and errors as the XML of the Query protocols, rendered from botocore's model.

Two flavours, as botocore's ``EC2QueryParser`` and ``QueryParser`` read them:

* **EC2**: ``<ActionResponse xmlns><requestId>…</requestId>members…</ActionResponse>``; every list
  element is an ``<item>``; an action without output answers ``<return>true</return>``; errors
  are ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``.
* **Query** (STS, IAM, …): ``<ActionResponse xmlns><ActionResult>members…</ActionResult>
  <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></ActionResponse>``; a list is
  wrapped, one ``<member>`` (or the member's ``locationName``) per element, unless the model
  flattens it; errors are ``<ErrorResponse xmlns><Error><Type>Sender|Receiver</Type><Code/>
  <Message/></Error><RequestId/></ErrorResponse>``.

In both, a member is the element named by its ``locationName`` (else the member name), in the
model's order; booleans are ``true``/``false``; timestamps ``2026-11-23T10:00:00.000Z``; blobs
base64; ``None`` members are omitted. See docs/ec2-protocol.md#rendering-results.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from botocore.model import OperationModel, Shape

# Characters XML 1.0 cannot carry (even escaped).
XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_SPECIAL_RE = re.compile("[&<>\r]|" + XML_INVALID_RE.pattern)
EC2_LIST_ITEM = "item"
"""EC2 wraps every element of every list in ``<item>`` (botocore's parser accepts any tag)."""


def format_timestamp(value: datetime) -> str:
    """The Query protocols' timestamp text: UTC, milliseconds, ``Z`` (``2026-11-23T10:00:00.000Z``).

    A naive datetime is taken to be UTC. EC2 handlers use this for the many members the model
    types as strings but fills with timestamps (``Image.CreationDate``, ``DeprecationTime``)."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def text(value: str) -> str:
    """``value`` as XML character data (``\\r`` as ``&#13;`` so it survives line-end
    normalisation; characters XML cannot carry become U+FFFD)."""
    if _XML_SPECIAL_RE.search(value) is None:
        return value
    value = XML_INVALID_RE.sub("\ufffd", value)
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def render_result(
    op: OperationModel, namespace: str, result: Mapping[str, object], request_id: str, *, ec2: bool
) -> bytes:
    """``result`` (keyed by the output shape's member names) as the response body of ``op``.

    :raises ValueError: a key the output shape lacks, or a value of the wrong Python type — a bug
        in the handler, which the edge turns into InternalError.
    """
    action = op.name
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{action}Response xmlns="{text(namespace)}">',
    ]
    if ec2:
        out.append(f"<requestId>{text(request_id)}</requestId>")
    shape = op.output_shape
    if shape is None:
        if any(value is not None for value in result.values()):
            raise ValueError(f"{action} has no output members, got {sorted(result)}")
        if ec2:
            out.append("<return>true</return>")
    elif ec2:
        render_members(shape, result, out, action, ec2)
    else:
        wrapper = str(shape.serialization.get("resultWrapper", f"{action}Result"))
        out.append(f"<{wrapper}>")
        render_members(shape, result, out, action, ec2)
        out.append(f"</{wrapper}>")
    if not ec2:
        out.append(
            f"<ResponseMetadata><RequestId>{text(request_id)}</RequestId></ResponseMetadata>"
        )
    out.append(f"</{action}Response>")
    return "".join(out).encode("utf-8")


def ec2_error(code: str, message: str, request_id: str) -> bytes:
    """EC2's error body (note ``RequestID``, as EC2 spells it there)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{text(code)}</Code>"
        f"<Message>{text(message)}</Message></Error></Errors>"
        f"<RequestID>{text(request_id)}</RequestID></Response>"
    ).encode()


def query_error(code: str, message: str, status: int, request_id: str, namespace: str) -> bytes:
    """The Query protocol's error body; ``Type`` is ``Receiver`` for a 5xx, else ``Sender``."""
    kind = "Receiver" if status >= 500 else "Sender"
    ns = f' xmlns="{text(namespace)}"' if namespace else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<ErrorResponse{ns}><Error><Type>{kind}</Type><Code>{text(code)}</Code>"
        f"<Message>{text(message)}</Message></Error>"
        f"<RequestId>{text(request_id)}</RequestId></ErrorResponse>"
    ).encode()


@lru_cache(maxsize=4096)
def _output_members(shape: Shape) -> dict[str, tuple[int, str, Shape]]:
    """For an output structure: member name -> (position in the model, XML tag, shape)."""
    return {
        name: (index, str(member.serialization.get("name", name)), member)
        for index, (name, member) in enumerate(shape.members.items())
    }


def render_members(shape: Shape, value: object, out: list[str], path: str, ec2: bool) -> None:
    """The members of structure ``value`` as XML elements appended to ``out``, whose last item
    is the structure's start tag (``xmlAttribute`` members are written into it)."""
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
    present.sort(key=lambda entry: entry[0])  # the model's order, as AWS writes them
    attributes = [entry for entry in present if entry[2].serialization.get("xmlAttribute")]
    if attributes:
        _render_attributes(shape, attributes, out, path)
    for _, tag, member, name, item in present:
        if member.serialization.get("xmlAttribute"):
            continue
        if (
            not ec2
            and member.type_name in ("list", "map")
            and member.serialization.get("flattened")
        ):
            _render_flattened(member, tag, item, out, path, name)
            continue
        out.append(f"<{tag}>")
        _render_value(member, item, out, path, name, ec2)
        out.append(f"</{tag}>")


def _render_attributes(
    shape: Shape, attributes: list[tuple[int, str, Shape, str, object]], out: list[str], path: str
) -> None:
    """Write rest-xml's ``xmlAttribute`` members (S3's ``xsi:type`` of a ``Grantee``) into the
    start tag ``out[-1]``, declaring the structure's namespace prefix."""
    start = out[-1]
    assert start.startswith("<") and start.endswith(">"), start
    namespace = shape.serialization.get("xmlNamespace")
    extra = ""
    if isinstance(namespace, Mapping) and namespace.get("prefix"):
        extra = f' xmlns:{namespace["prefix"]}="{text(str(namespace["uri"]))}"'
    for _, tag, member, name, item in attributes:
        value = text(_scalar_text(member.type_name, item, path, name)).replace('"', "&quot;")
        extra += f' {tag}="{value}"'
    out[-1] = f"{start[:-1]}{extra}>"


def _elements(value: object, path: str, name: str) -> list[object]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{path}.{name}: expected a list, got {type(value).__name__}")
    return [element for element in value if element is not None]


def _entries(value: object, path: str, name: str) -> list[tuple[object, object]]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}.{name}: expected a mapping, got {type(value).__name__}")
    return [(k, v) for k, v in value.items() if v is not None]


def _render_flattened(
    shape: Shape, tag: str, value: object, out: list[str], path: str, name: str
) -> None:
    if shape.type_name == "list":
        element_tag = str(shape.member.serialization.get("name", tag))
        for element in _elements(value, path, name):
            out.append(f"<{element_tag}>")
            _render_value(shape.member, element, out, path, f"{name}[]", False)
            out.append(f"</{element_tag}>")
        return
    for key, item in _entries(value, path, name):
        out.append(f"<{tag}>")
        _render_entry(shape, key, item, out, path, name)
        out.append(f"</{tag}>")


def _render_entry(
    shape: Shape, key: object, item: object, out: list[str], path: str, name: str
) -> None:
    key_tag = str(shape.key.serialization.get("name", "key"))
    value_tag = str(shape.value.serialization.get("name", "value"))
    out.append(f"<{key_tag}>")
    _render_value(shape.key, key, out, path, f"{name}{{}}", False)
    out.append(f"</{key_tag}><{value_tag}>")
    _render_value(shape.value, item, out, path, f"{name}{{}}", False)
    out.append(f"</{value_tag}>")


def _render_value(
    shape: Shape, value: object, out: list[str], path: str, name: str, ec2: bool
) -> None:
    # ``path`` + ``name`` locate the value in error messages; joined only when one is raised.
    kind = shape.type_name
    if kind == "structure":
        render_members(shape, value, out, f"{path}.{name}", ec2)
    elif kind == "list":
        tag = EC2_LIST_ITEM if ec2 else str(shape.member.serialization.get("name", "member"))
        for element in _elements(value, path, name):
            out.append(f"<{tag}>")
            _render_value(shape.member, element, out, path, f"{name}[]", ec2)
            out.append(f"</{tag}>")
    elif kind == "map":
        for key, item in _entries(value, path, name):
            out.append("<entry>")
            _render_entry(shape, key, item, out, path, name)
            out.append("</entry>")
    else:
        out.append(text(_scalar_text(kind, value, path, name)))


def _scalar_text(kind: str, value: object, path: str, name: str) -> str:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if (
        kind in ("float", "double")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return repr(float(value))
    if kind == "timestamp" and isinstance(value, datetime):
        return format_timestamp(value)
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise ValueError(f"{path}.{name}: expected {kind}, got {type(value).__name__} {value!r:.80}")
