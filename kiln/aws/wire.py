"""What every protocol module gives the edge: a request in, a call out; a result or error back.

The edge (kiln/aws/edge.py) knows nothing of forms, XML or JSON. It hands each protocol the raw
:class:`WireRequest` and gets a :class:`Call` (operation name and parsed params) back, then asks the
protocol to render the handler's result or a ``KilnError``. One implementation per protocol:
``kiln.aws.query.QueryProtocol`` (EC2's flavour and plain AWS Query), ``kiln.aws.json.JsonProtocol``
(JSON 1.0/1.1), ``kiln.aws.rest_json.RestJsonProtocol`` and ``kiln.aws.rest_xml.RestXmlProtocol``
(the rest protocols, which also answer with headers and a status of their own).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

Params = dict[str, object]
"""Parsed request parameters: member name -> str | int | float | bool | datetime | bytes |
list | dict (nested the same way). Absent members are absent, never None."""


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One HTTP request as received: ``path`` as sent (still percent-encoded), the query string
    without ``?``, headers lower-cased (repeats joined with ``,``)."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """The operation a request names and its parameters, keyed by the input shape's members."""

    operation: str
    params: Params


@dataclass(frozen=True, slots=True)
class SpooledBody:
    """A request payload the edge streamed to a file instead of memory (S3's ``PutObject`` and
    ``UploadPart`` ``Body``): the file (removed after the handler unless it moved it), the
    decoded size, its MD5 (hex) and the ``x-amz-checksum-*`` values it was verified against
    (algorithm, lower-case -> base64)."""

    path: Path
    size: int
    md5: str
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FileBody:
    """A response payload sent from an open file: ``length`` bytes from ``offset``. The edge
    streams it and closes the file (S3's ``GetObject`` ``Body``)."""

    file: BinaryIO
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response body, its content type and — for the rest protocols — the headers and status
    of a success (the edge sends an error with its code's status whatever ``status`` says);
    ``stream`` instead of ``body`` for a payload sent from a file."""

    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    stream: FileBody | None = None


class WireProtocol(Protocol):
    """One protocol bound to one service's botocore model."""

    def operation_names(self) -> frozenset[str]:
        """Every operation of the service's model."""
        ...

    def decode(self, request: WireRequest, served: Collection[str]) -> Call:
        """The call ``request`` makes. ``served`` are the operations the service implements.

        :raises KilnError: the protocol's unknown-operation error (``InvalidAction``, spelled
            ``UnknownOperationException`` by JSON services) for an operation not in ``served``,
            or a parse error (``UnknownParameter``, ``MissingParameter``,
            ``InvalidParameterValue``, ``SerializationException``, ...)."""
        ...

    def render(self, operation: str, result: Mapping[str, object], request_id: str) -> Rendered:
        """The success body of ``operation``.

        :raises ValueError: ``result`` does not fit the output shape (a handler bug)."""
        ...

    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        """The error body for ``code`` (already in the service's spelling)."""
        ...
