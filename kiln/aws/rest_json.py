"""The AWS rest-json protocol (Recycle Bin, Image Builder, ...), generated from botocore's model.

A request is the operation's ``http.method`` on a path matching its ``http.requestUri``
(``DELETE /rules/{identifier}``); members come from the URI, the query string and the headers
where the model says ``location`` (kiln/aws/rest.py), the rest from a JSON object body keyed by
the members' names (or the ``payload`` member alone, when the input names one), as botocore's
``RestJSONSerializer`` writes them. Values are typed and validated as the JSON protocol does
(kiln/aws/json.py: wrong types ``SerializationException``; a missing required member, an enum
or ``min``/``max`` broken ``ValidationException``; unknown body members ignored).

The answer has the operation's ``http.responseCode`` (201 for ``CreateRule``; a 204 has no body),
``location: header`` members as headers and the rest as a JSON object,
``Content-Type: application/json``. No route matching the method and path, or an operation not
served, is ``UnknownOperationException`` with HTTP 404. Errors are ``{"__type": code, "message":
…}`` with ``x-amzn-ErrorType: code``, the header botocore's ``RestJSONParser`` reads first.
See docs/aws-edge.md#rest-json.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from botocore.model import ServiceModel, Shape

from kiln import errors
from kiln.aws import rest
from kiln.aws.bounds import Limits
from kiln.aws.json import JSON_LIMITS, JsonReader, error_body, load_document, render_value
from kiln.aws.model import operation_names
from kiln.aws.wire import Call, Params, Rendered, WireRequest
from kiln.errors import KilnError

CONTENT_TYPE = "application/json"
_NO_BODY = frozenset({204, 304})


def unknown_route(where: str, operation: str | None) -> KilnError:
    return KilnError(
        errors.UnknownRestOperation, f"No operation {where!r} is served by this endpoint."
    )


@dataclass(frozen=True, slots=True)
class RestJsonProtocol:
    """The rest-json protocol of one service: method + path + JSON in, status + JSON out."""

    model: ServiceModel
    limits: Limits = JSON_LIMITS

    @property
    def reader(self) -> JsonReader:
        return JsonReader(self.limits)

    def operation_names(self) -> frozenset[str]:
        return operation_names(self.model)

    def decode(self, request: WireRequest, served: Collection[str]) -> Call:
        return rest.decode(self.model, request, served, self.reader, self._body, unknown_route)

    def _body(self, shape: Shape, body: bytes, located: Params | None) -> Params:
        return self.reader.structure(shape, load_document(body), "", located=located)

    def render(self, operation: str, result: Mapping[str, object], request_id: str) -> Rendered:
        op, split, status = rest.prepare_output(self.model, operation, result)
        shape = op.output_shape
        payload = shape.serialization.get("payload") if shape is not None else None
        content_type = CONTENT_TYPE
        if status in _NO_BODY:
            body = b""
        elif shape is None or payload is None:
            out = render_value(shape, split.body, operation) if shape is not None else {}
            body = json.dumps(out, separators=(",", ":")).encode()
        else:
            body, content_type = self._payload(shape.members[payload], split.body.get(payload))
        return Rendered(body, content_type, split.headers, status)

    @staticmethod
    def _payload(member: Shape, value: object) -> tuple[bytes, str]:
        if member.type_name == "structure":
            out = render_value(member, value if value is not None else {}, member.name)
            return json.dumps(out, separators=(",", ":")).encode(), CONTENT_TYPE
        if value is None:
            return b"", CONTENT_TYPE
        return rest.payload_bytes(member, value, member.name), "application/octet-stream"

    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        return Rendered(error_body(code, message), CONTENT_TYPE, {"x-amzn-ErrorType": code})
