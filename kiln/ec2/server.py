"""The EC2 HTTP endpoint: one Starlette route that authenticates, dispatches and renders.

Per request, in this order: read the body (bounded) -> verify SigV4 -> check the credential
scope's service and region -> read ``Action``/``Version`` -> find the handler -> parse the params
from the model -> run the handler in a worker thread -> render XML. Any ``Ec2Error`` becomes EC2's
error XML with its HTTP status; anything else becomes ``InternalError`` (500), logged once with its
RequestId and traceback, never shown to the client. See docs/ec2-protocol.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kiln import errors
from kiln.ec2.protocol import Params, decode_form, parse_query, render_error, render_result
from kiln.ec2.shapes import API_VERSION, operation_names
from kiln.ec2.sigv4 import CredentialLookup, verify_sigv4
from kiln.errors import Ec2Error

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
CONTENT_TYPE = "text/xml;charset=UTF-8"
SERVICE = "ec2"
INTERNAL_ERROR_MESSAGE = "An internal error has occurred"
DRY_RUN_MESSAGE = "Request would have succeeded, but DryRun flag is set."


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is calling, where, and the app's wiring (catalog, stores, ...) as ``state``."""

    account_id: str
    access_key_id: str
    region: str
    request_id: str
    state: object


Handler = Callable[[RequestContext, Params], Mapping[str, object]]
"""A synchronous action: parsed params in, a result keyed by the output shape's members out.
Runs in a worker thread; raises ``Ec2Error`` for anything the caller did wrong."""


def check_dry_run(params: Params) -> None:
    """Raise DryRunOperation when the request carries ``DryRun=true``.

    Call it after the permission checks a real call would make (EC2 answers
    UnauthorizedOperation to a dry run the caller may not perform)."""
    if params.get("DryRun") is True:
        raise Ec2Error(errors.DryRunOperation, DRY_RUN_MESSAGE)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_ec2_app(actions: Mapping[str, Handler], lookup_credential: CredentialLookup,
                  regions: Collection[str], state: object, *,
                  clock: Callable[[], datetime] = _utc_now) -> Starlette:
    """The ASGI app serving the EC2 Query API at ``/`` (GET and POST) and ``GET /healthz``.

    ``actions`` maps EC2 action names to handlers; a name botocore's model does not know is a
    ValueError here (a wiring bug), an action the model knows but ``actions`` lacks answers
    InvalidAction. ``regions`` are the regions a credential scope may name.
    """
    unknown = sorted(set(actions) - operation_names())
    if unknown:
        raise ValueError(f"not EC2 actions: {unknown}")
    endpoint = _Endpoint(dict(actions), lookup_credential, frozenset(regions), state, clock)
    app = Starlette(routes=[
        Route("/", endpoint.handle, methods=["GET", "POST"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ])
    app.state.ec2_state = state
    return app


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


class _Endpoint:
    def __init__(self, actions: dict[str, Handler], lookup: CredentialLookup,
                 regions: frozenset[str], state: object, clock: Callable[[], datetime]) -> None:
        self._actions = actions
        self._lookup = lookup
        self._regions = regions
        self._state = state
        self._clock = clock

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        action, account = "-", "-"
        try:
            body = await _read_body(request)
            auth = verify_sigv4(
                request.method,
                (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1"),
                request.scope.get("query_string", b"").decode("latin-1"),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                body, self._lookup, self._clock())
            account = auth.account_id
            if auth.service != SERVICE:
                raise Ec2Error(errors.AuthFailure,
                               f"Credential should be scoped to correct service: '{SERVICE}'.")
            if auth.region not in self._regions:
                raise Ec2Error(errors.AuthFailure, "Credential should be scoped to a valid "
                                                   f"region, not '{auth.region}'.")
            form = decode_form(request.scope.get("query_string", b""))
            if request.method == "POST":
                form.update(decode_form(body))
            action = _single(form, "Action")
            _check_version(_single(form, "Version"))
            handler = self._actions.get(action)
            if handler is None:
                raise Ec2Error(errors.InvalidAction,
                               f"The action {action[:128]} is not valid for this web service.")
            params = parse_query(action, form)
            context = RequestContext(account_id=auth.account_id, access_key_id=auth.access_key_id,
                                     region=auth.region, request_id=request_id,
                                     state=self._state)
            result = await run_in_threadpool(handler, context, params)
            content, status = render_result(action, result, request_id), 200
        except Ec2Error as exc:
            content = render_error(exc.code.code, exc.message, request_id)
            status = exc.code.http_status
        except Exception:
            log.exception("InternalError in %s, RequestId %s", action, request_id)
            content = render_error(errors.InternalError.code, INTERNAL_ERROR_MESSAGE, request_id)
            status = errors.InternalError.http_status
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s RequestId=%s account=%s status=%d %.1fms", action, request_id, account,
                 status, elapsed_ms)
        return Response(content, status_code=status, media_type=CONTENT_TYPE,
                        headers={"x-amzn-RequestId": request_id})


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Ec2Error(errors.InvalidRequest,
                           f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _single(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    if not values or not values[-1]:
        raise Ec2Error(errors.MissingParameter, f"The request must contain the parameter {name}")
    return values[-1]


def _check_version(version: str) -> None:
    if version != API_VERSION:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Value ({version}) for parameter Version is invalid. This endpoint "
                       f"speaks EC2 API version {API_VERSION} only.")
