"""The AWS rest-xml protocol (S3), generated from botocore's model.

Routes and the members in the URI, query string and headers are kiln/aws/rest.py's, as for
rest-json; S3 is addressed path-style only (``/{Bucket}``, ``/{Bucket}/{Key+}``): the ``Host``
header is never looked at, so a virtual-hosted request (``bucket.host/key``) is taken for the
path it carries. The body is XML as botocore's ``RestXMLSerializer`` writes it: the ``payload``
member (``<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/">…``), an element per member
named by its ``locationName``; a list wrapped (one ``<member>`` or the member's ``locationName``
per element) unless the model flattens it; maps as ``<entry><key/><value/></entry>``; an
``xmlAttribute`` member an attribute; namespaces are ignored on input. A blob payload
(``PutObject``'s ``Body``) is the body itself. The XML is parsed by expat with any DOCTYPE
refused, so no entity is ever declared or expanded (no billion laughs, no external entities).

Values are typed and validated as the JSON protocol does, in S3's codes: XML that does not parse
(or has the wrong root element), or text that is not of the member's type, is ``MalformedXML``;
a missing required member, a broken enum or ``min``/``max`` ``InvalidArgument``. No route
matching the method and path is ``MethodNotAllowed`` (405); an operation of the model Kiln does
not serve ``NotImplemented`` (501).

The answer has the operation's ``http.responseCode``, header members as headers, and the payload
member or the remaining members as XML (rendered by kiln/aws/xml.py, the Query protocols'
conventions, which are rest-xml's) under the payload's ``locationName`` (else the output shape's,
else ``<Operation>Result``) in the model's namespace; no body members, no body. Errors are
``<Error><Code/><Message/><RequestId/></Error>`` with the code's status, as botocore's
``RestXMLParser`` reads S3's. See docs/aws-edge.md#rest-xml.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from botocore.model import OperationModel, ServiceModel, Shape

from kiln import errors
from kiln.aws import rest, xml
from kiln.aws.bounds import Limits
from kiln.aws.json import JsonReader
from kiln.aws.model import operation_names
from kiln.aws.query import decode_form
from kiln.aws.wire import Call, FileBody, Params, Rendered, WireRequest
from kiln.errors import KilnError

S3_LIMITS = Limits(invalid=errors.InvalidArgument, check_min=True)
CONTENT_TYPE = "application/xml"
#: Outputs the model cannot describe: the member's text is the root element's (S3's
#: ``<LocationConstraint xmlns=…>eu-west-1</LocationConstraint>``, which botocore reads by hand
#: in ``parse_get_bucket_location``).
ROOT_TEXT = {"GetBucketLocation": "LocationConstraint"}
_MALFORMED = (
    "The XML you provided was not well-formed or did not validate against our published schema."
)


def unknown_route(where: str, operation: str | None) -> KilnError:
    if operation is not None:
        return KilnError(errors.S3NotImplemented, f"{operation} is not implemented by Kiln.")
    return KilnError(
        errors.MethodNotAllowed, f"The specified method is not allowed against {where!r}."
    )


class _Refused(Exception):
    """A DOCTYPE (and with it any entity declaration) in a request body."""


def _refuse(*_: object) -> None:
    raise _Refused


def parse_xml(body: bytes) -> Element:
    """``body`` as an element tree, tags and attribute names without their namespace.

    :raises KilnError: MalformedXML: not well-formed, or it has a DOCTYPE."""
    builder = TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.StartElementHandler = lambda tag, attrs: builder.start(
        _local(tag), {_local(k): v for k, v in attrs.items()}
    )
    parser.EndElementHandler = lambda tag: builder.end(_local(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body, True)
        return builder.close()
    except (expat.ExpatError, _Refused, AssertionError):
        raise KilnError(errors.MalformedXML, _MALFORMED) from None


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


def _by_tag(element: Element) -> dict[str, list[Element]]:
    children: dict[str, list[Element]] = {}
    for child in element:
        children.setdefault(str(child.tag), []).append(child)
    return children


@dataclass(frozen=True, slots=True)
class _FromXml:
    """XML elements as the JSON-like values :class:`JsonReader` validates, guided by the model."""

    reader: JsonReader

    def structure(self, shape: Shape, element: Element, path: str) -> dict[str, object]:
        children = _by_tag(element)
        out: dict[str, object] = {}
        for name, member in shape.members.items():
            wire = str(member.serialization.get("name", name))
            where = f"{path}.{name}" if path else name
            if member.serialization.get("xmlAttribute"):
                if wire.rpartition(":")[2] in element.attrib:
                    out[wire] = element.attrib[wire.rpartition(":")[2]]
            elif member.type_name in ("list", "map") and member.serialization.get("flattened"):
                tag = wire
                if member.type_name == "list":
                    tag = str(member.member.serialization.get("name", wire))
                if tag in children:
                    out[wire] = self._many(member, children[tag], where)
            elif wire in children:
                out[wire] = self.value(member, children[wire][-1], where)
        return out

    def value(self, shape: Shape, element: Element, path: str) -> object:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, element, path)
        if kind in ("list", "map"):
            wrapped = [child for child in element]
            if kind == "map":
                wrapped = [child for child in wrapped if child.tag == "entry"]
            return self._many(shape, wrapped, path)
        return rest.text_value(shape, element.text or "", path, self.reader)

    def _many(self, shape: Shape, elements: list[Element], path: str) -> object:
        if shape.type_name == "list":
            return [self.value(shape.member, e, f"{path}.{i + 1}") for i, e in enumerate(elements)]
        key_tag = str(shape.key.serialization.get("name", "key"))
        value_tag = str(shape.value.serialization.get("name", "value"))
        out: dict[str, object] = {}
        for entry in elements:
            key, value = entry.find(key_tag), entry.find(value_tag)
            if key is None or value is None:
                raise KilnError(errors.MalformedXML, _MALFORMED)
            out[key.text or ""] = self.value(shape.value, value, f"{path}.{key.text}")
        return out


@dataclass(frozen=True, slots=True)
class RestXmlProtocol:
    """The rest-xml protocol of one service (S3): method + path + XML in, status + XML out."""

    model: ServiceModel
    limits: Limits = S3_LIMITS

    @property
    def reader(self) -> JsonReader:
        return JsonReader(self.limits, malformed=errors.MalformedXML)

    @property
    def namespace(self) -> str:
        meta = self.model.metadata
        default = f"http://{meta['endpointPrefix']}.amazonaws.com/doc/{meta['apiVersion']}/"
        return str(meta.get("xmlNamespace", default))

    def operation_names(self) -> frozenset[str]:
        return operation_names(self.model)

    def decode(self, request: WireRequest, served: Collection[str]) -> Call:
        return rest.decode(self.model, request, served, self.reader, self._body, unknown_route)

    def streaming_member(self, request: WireRequest, served: Collection[str]) -> str | None:
        """The input member a request's body is, when the served operation it routes to takes
        its body as a streaming blob payload (``PutObject``, ``UploadPart``: ``Body``); else
        None. Only the method, path, query and headers are looked at."""
        route = rest.match(self.model, request, decode_form(request.query_string), served)
        if route is None or route.operation not in served:
            return None
        shape = self.model.operation_model(route.operation).input_shape
        payload = shape.serialization.get("payload") if shape is not None else None
        if payload is None:
            return None
        member = shape.members[payload] if shape is not None else None
        if (
            member is None
            or member.type_name != "blob"
            or not member.serialization.get("streaming")
        ):
            return None
        return str(payload)

    def _body(self, shape: Shape, body: bytes, located: Params | None) -> Params:
        document: dict[str, object] = {}
        if body.strip():
            root = parse_xml(body)
            if root.tag != str(shape.serialization.get("name", shape.name)):
                raise KilnError(errors.MalformedXML, _MALFORMED)
            document = _FromXml(self.reader).structure(shape, root, "")
        return self.reader.structure(shape, document, "", located=located)

    def render(self, operation: str, result: Mapping[str, object], request_id: str) -> Rendered:
        op, split, status = rest.prepare_output(self.model, operation, result)
        headers = {"x-amz-request-id": request_id, **split.headers}
        if status == 200 and "Content-Range" in headers:
            status = 206  # HTTP: a success that sends a range is Partial Content (GetObject)
        stream = self._streamed(op, split.body)
        if stream is not None:
            return Rendered(b"", "application/octet-stream", headers, status, stream)
        body, content_type = self._body_of(op, split.body)
        return Rendered(body, content_type, headers, status)

    @staticmethod
    def _streamed(op: OperationModel, members: dict[str, object]) -> FileBody | None:
        """A blob payload the handler gave as an open file (``GetObject``'s ``Body``)."""
        shape = op.output_shape
        payload = shape.serialization.get("payload") if shape is not None else None
        value = members.get(payload) if payload is not None else None
        if isinstance(value, FileBody):
            assert shape is not None
            if shape.members[payload].type_name != "blob":
                raise ValueError(f"{op.name}.{payload}: a file for a non-blob payload")
            return value
        return None

    def _body_of(self, op: OperationModel, members: dict[str, object]) -> tuple[bytes, str]:
        shape = op.output_shape
        if op.name in ROOT_TEXT:
            root, value = ROOT_TEXT[op.name], members.get(ROOT_TEXT[op.name])
            text = xml.text(str(value)) if value is not None else ""
            document = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{self.namespace}">'
            return f"{document}{text}</{root}>".encode(), CONTENT_TYPE
        if shape is None or not members:
            return b"", CONTENT_TYPE
        payload = shape.serialization.get("payload")
        if payload is None:
            root = str(shape.serialization.get("name", f"{op.name}Result"))
            return self._document(shape, root, members, op.name), CONTENT_TYPE
        member = shape.members[payload]
        value = members[payload]
        if member.type_name != "structure":
            return rest.payload_bytes(member, value, op.name), "application/octet-stream"
        root = str(member.serialization.get("name", payload))
        return self._document(member, root, value, op.name), CONTENT_TYPE

    def _document(self, shape: Shape, root: str, value: object, path: str) -> bytes:
        namespace = shape.serialization.get("xmlNamespace")
        uri = namespace.get("uri") if isinstance(namespace, Mapping) else None
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            f'<{root} xmlns="{xml.text(str(uri or self.namespace))}">',
        ]
        xml.render_members(shape, value, out, path, ec2=False)
        out.append(f"</{root}>")
        return "".join(out).encode("utf-8")

    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        if status == 304:  # NotModified: HTTP allows no body
            return Rendered(b"", CONTENT_TYPE, {"x-amz-request-id": request_id})
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{xml.text(code)}</Code><Message>{xml.text(message)}</Message>"
            f"<RequestId>{xml.text(request_id)}</RequestId></Error>"
        ).encode()
        return Rendered(body, CONTENT_TYPE, {"x-amz-request-id": request_id})
