"""The AWS endpoint: one Starlette route that authenticates, dispatches by service and renders.

Every path and method (GET, POST, PUT, DELETE, HEAD, PATCH) reaches the endpoint, as the rest
protocols need; an unsigned ``GET /healthz`` is the health check. Per request, in this order:
read the body (bounded) -> pick the service the SigV4 credential scope names (``ec2``, ``sts``,
``kms``; it also picks the protocol errors are rendered in, and the service's signing rules) ->
verify SigV4 -> check the scope's region (AuthFailure for a name AWS does not have,
OptInRequired for one this endpoint does not serve) -> the service's protocol decodes the call (``Action``
for the Query protocols, ``X-Amz-Target`` for JSON, method and path for rest-json/rest-xml) ->
the handler runs in a worker thread -> the protocol renders the result, with the headers and
status a rest protocol gives it. A ``KilnError`` is renamed by the service's ``spellings`` and
rendered by its protocol with the code's HTTP status; anything else is ``InternalError`` (500),
logged once with its RequestId and traceback, never shown to the client. A scope naming a service
Kiln does not serve gets the unknown-operation error of the protocol the request looks like
(``UnknownOperationException`` for JSON, ``InvalidAction`` otherwise). See docs/aws-edge.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from kiln import errors
from kiln.aws import json as aws_json
from kiln.aws import xml
from kiln.aws.context import Handler, RequestContext
from kiln.aws.payload import spool_body
from kiln.aws.regions import known_region_names
from kiln.aws.sigv4 import (
    DEFAULT_RULES,
    CredentialLookup,
    SigningRules,
    scope_service,
    verify_sigv4,
)
from kiln.aws.wire import Call, FileBody, Rendered, SpooledBody, WireProtocol, WireRequest
from kiln.errors import ErrorCode, KilnError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_STREAMED_BYTES = 5 * 1024**3  # S3's largest single PUT (and part)
STREAM_READ_BYTES = 1024 * 1024
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
INTERNAL_ERROR_MESSAGE = "An internal error has occurred"


@dataclass(frozen=True, slots=True)
class Service:
    """One AWS service Kiln serves: its SigV4 scope name, its protocol and its handlers.

    ``spellings`` renames Kiln's codes this service spells differently (KMS says
    ``ValidationException`` where EC2 says ``InvalidParameterValue``), by code string;
    ``signing`` how its requests are signed (``kiln.aws.sigv4.S3_RULES`` for S3);
    ``streams`` names, for a request whose body is a streaming payload (S3's ``PutObject``,
    ``UploadPart``), the input member the edge puts the body in as a
    :class:`~kiln.aws.wire.SpooledBody` instead of reading it into memory (None: read it)."""

    name: str
    protocol: WireProtocol
    actions: Mapping[str, Handler]
    spellings: Mapping[str, ErrorCode] = field(default_factory=dict)
    signing: SigningRules = DEFAULT_RULES
    streams: Callable[[WireRequest], str | None] | None = None

    def spell(self, code: ErrorCode) -> ErrorCode:
        return self.spellings.get(code.code, code)


#: How a request for a service Kiln does not serve is answered, by the protocol it looks like.
_JSON_FALLBACK_SPELLINGS = {
    errors.InvalidAction.code: errors.UnknownOperation,
    errors.AuthFailure.code: errors.UnrecognizedClient,
    errors.InternalError.code: errors.InternalFailure,
}


class _FallbackJson:
    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        return Rendered(aws_json.error_body(code, message), "application/x-amz-json-1.1")


class _FallbackQuery:
    def render_error(self, code: str, message: str, status: int, request_id: str) -> Rendered:
        return Rendered(xml.query_error(code, message, status, request_id, ""), "text/xml")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_edge(
    services: Sequence[Service],
    lookup_credential: CredentialLookup,
    regions: Collection[str],
    state: object,
    *,
    clock: Callable[[], datetime] = _utc_now,
    spool_dir: Path | None = None,
    max_streamed_bytes: int = MAX_STREAMED_BYTES,
) -> Starlette:
    """The ASGI app serving ``services`` at every path (:data:`METHODS`), and an unsigned
    ``GET /healthz``.

    The first service answers requests that name no scope at all (unsigned ones). An action
    name a service's model does not know is a ValueError here (a wiring bug); an action the
    model knows but ``actions`` lacks answers the protocol's unknown-operation error.
    ``regions`` are the regions a credential scope may name. ``spool_dir`` is where streamed
    payloads are written (kiln/aws/payload.py); without it every body is read into memory.
    """
    for service in services:
        unknown = sorted(set(service.actions) - service.protocol.operation_names())
        if unknown:
            raise ValueError(f"not {service.name} actions: {unknown}")
    endpoint = _Endpoint(
        {s.name: s for s in services},
        services[0],
        lookup_credential,
        frozenset(regions),
        state,
        clock,
        _Spool(spool_dir, max_streamed_bytes) if spool_dir is not None else None,
    )

    async def healthz(request: Request) -> Response:
        query = request.scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        if request.method == "GET" and scope_service(query, headers) is None:
            return PlainTextResponse("ok")
        return await endpoint.handle(request)  # a signed request, say for an S3 bucket "healthz"

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=METHODS),
            Route("/{path:path}", endpoint.handle, methods=METHODS),
        ]
    )
    app.state.edge_state = state
    return app


@dataclass(frozen=True, slots=True)
class _Spool:
    directory: Path
    max_bytes: int


class _Endpoint:
    def __init__(
        self,
        services: dict[str, Service],
        default: Service,
        lookup: CredentialLookup,
        regions: frozenset[str],
        state: object,
        clock: Callable[[], datetime],
        spool: _Spool | None,
    ) -> None:
        self._services = services
        self._default = default
        self._lookup = lookup
        self._regions = regions
        self._state = state
        self._clock = clock
        self._spool = spool

    def _service_for(
        self, query: str, headers: Sequence[tuple[str, str]], looks_json: bool
    ) -> Service | None:
        claimed = scope_service(query, headers)
        if claimed is None:
            return None if looks_json else self._default
        return self._services.get(claimed)

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        action, account = "-", "-"
        query = request.scope.get("query_string", b"").decode("latin-1")
        header_list = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        looks_json = "x-amz-target" in request.headers or request.headers.get(
            "content-type", ""
        ).startswith("application/x-amz-json")
        service = self._service_for(query, header_list, looks_json)
        name = service.name if service is not None else "-"
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        headers = _joined_headers(header_list)
        head = WireRequest(request.method, raw_path, query, headers, b"")
        streamed = (
            service.streams(head)
            if service is not None and service.streams is not None and self._spool is not None
            else None
        )
        spooled: SpooledBody | None = None
        try:
            body = await _read_body(request) if streamed is None else None
            auth = verify_sigv4(
                request.method,
                raw_path,
                query,
                header_list,
                body,
                self._lookup,
                self._clock(),
                service.signing if service is not None else DEFAULT_RULES,
            )
            account = auth.account_id
            if auth.region not in self._regions:
                raise _region_error(auth.region, self._regions)
            if service is None or service.name != auth.service:
                raise KilnError(
                    errors.InvalidAction,
                    f"The service {auth.service[:64]!r} is not served by this endpoint.",
                )
            if streamed is None:
                assert body is not None
                call = service.protocol.decode(
                    WireRequest(request.method, raw_path, query, headers, body), service.actions
                )
            else:
                call = service.protocol.decode(head, service.actions)
                action = call.operation
                spool, claim = self._spool, auth.payload
                assert spool is not None and claim is not None  # asked for and streamed
                spooled = await spool_body(
                    request.stream(), spool.directory, claim, headers, spool.max_bytes
                )
                call = Call(call.operation, {**call.params, streamed: spooled})
            action = call.operation
            context = RequestContext(
                account_id=auth.account_id,
                access_key_id=auth.access_key_id,
                region=auth.region,
                request_id=request_id,
                state=self._state,
            )
            try:
                result = await run_in_threadpool(service.actions[action], context, call.params)
            finally:
                if spooled is not None:  # the handler moved it where it belongs, or it goes
                    spooled.path.unlink(missing_ok=True)
            rendered = _rendered(service, action, result, request_id)
            status = rendered.status
        except KilnError as exc:
            rendered, status = self._error(service, looks_json, exc.code, exc.message, request_id)
        except Exception:
            log.exception("InternalError in %s.%s, RequestId %s", name, action, request_id)
            rendered, status = self._error(
                service, looks_json, errors.InternalError, INTERNAL_ERROR_MESSAGE, request_id
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s.%s RequestId=%s account=%s status=%d %.1fms",
            name,
            action,
            request_id,
            account,
            status,
            elapsed_ms,
        )
        return _response(rendered, status, request_id, request.method == "HEAD")

    @staticmethod
    def _error(
        service: Service | None, looks_json: bool, code: ErrorCode, message: str, request_id: str
    ) -> tuple[Rendered, int]:
        if service is not None:
            spelled = service.spell(code)
            return (
                service.protocol.render_error(
                    spelled.code, message, spelled.http_status, request_id
                ),
                spelled.http_status,
            )
        if looks_json:
            spelled = _JSON_FALLBACK_SPELLINGS.get(code.code, code)
            return (
                _FallbackJson().render_error(
                    spelled.code, message, spelled.http_status, request_id
                ),
                spelled.http_status,
            )
        return (
            _FallbackQuery().render_error(code.code, message, code.http_status, request_id),
            code.http_status,
        )


def _region_error(region: str, served: frozenset[str]) -> KilnError:
    """A scope naming a region no AWS partition has is AuthFailure, as on AWS; a real region
    this endpoint does not serve (``kiln serve --regions``) is OptInRequired, as a region the
    account has not opted in to (docs/regions.md)."""
    if region in known_region_names():
        return KilnError(
            errors.OptInRequired,
            f"The region '{region}' is not enabled on this endpoint (it serves "
            f"{len(served)} region(s); kiln serve --regions chooses them).",
        )
    return KilnError(
        errors.AuthFailure,
        f"Credential should be scoped to a valid region, not '{region[:64]}'.",
    )


def _rendered(
    service: Service, action: str, result: Mapping[str, object], request_id: str
) -> Rendered:
    """The protocol's rendering of ``result``; a file the result would have streamed is closed
    when rendering fails."""
    try:
        return service.protocol.render(action, result, request_id)
    except BaseException:
        for value in result.values():
            if isinstance(value, FileBody):
                value.file.close()
        raise


def _response(rendered: Rendered, status: int, request_id: str, head: bool) -> Response:
    """The HTTP response; a HEAD's has no body but keeps the Content-Length it was given, and
    so does a streamed one."""
    stream = rendered.stream
    if stream is not None and head:
        stream.file.close()
        stream = None
    headers = {
        name: value
        for name, value in rendered.headers.items()
        if head or stream is not None or name.lower() != "content-length"
    }
    headers["x-amzn-RequestId"] = request_id
    if stream is not None:
        headers["Content-Length"] = str(stream.length)
        return StreamingResponse(
            _file_chunks(stream),
            status_code=status,
            media_type=rendered.content_type,
            headers=headers,
        )
    return Response(
        b"" if head else rendered.body,
        status_code=status,
        media_type=rendered.content_type,
        headers=headers,
    )


def _joined_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


async def _file_chunks(body: FileBody) -> AsyncIterator[bytes]:
    """``body``'s bytes in pieces read off the event loop; the file is closed at the end (or
    when the client goes away)."""
    try:
        await run_in_threadpool(body.file.seek, body.offset)
        left = body.length
        while left > 0:
            piece = await run_in_threadpool(body.file.read, min(left, STREAM_READ_BYTES))
            if not piece:
                raise OSError(f"{body.file.name}: shorter than the {body.length} bytes promised")
            left -= len(piece)
            yield piece
    finally:
        body.file.close()


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise KilnError(
                errors.InvalidRequest, f"The request body is larger than {MAX_BODY_BYTES} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)
