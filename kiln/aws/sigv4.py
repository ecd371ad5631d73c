"""Verify AWS Signature Version 4 (the ``Authorization`` header and presigned-query forms).

Computed here with hmac/hashlib per AWS's specification, the same way botocore's ``SigV4Auth``
signs: canonical request = method, canonical URI (path normalised, then URI-encoded — for every
service but S3 that encodes an already-encoded path a second time), canonical query (decoded, then
re-encoded with RFC 3986 unreserved characters, sorted), the signed headers lower-cased with
whitespace collapsed, the signed header list, and the SHA-256 of the body. S3 differs
(botocore's ``S3SigV4Auth``), as :data:`S3_RULES` says: the path is signed as sent (neither
normalised nor encoded again), and the payload hash is whatever ``x-amz-content-sha256`` claims
when that is ``UNSIGNED-PAYLOAD`` (and for a presigned URL). The streaming forms
(``STREAMING-…``, aws-chunked bodies) are accepted only when the caller streams the body itself
(``body=None``): the header's signature is then checked against the claimed payload hash, and
:class:`AuthResult` carries what the body must be checked against afterwards (the claimed
SHA-256, or the seed of the chunk signatures, kiln/aws/chunked.py). Every failure is
``KilnError(AuthFailure)`` (HTTP 401), as EC2 reports them; each service renders it in its own
spelling (kiln/aws/edge.py). Service-neutral: the caller checks the scope's service and region.
See docs/ec2-protocol.md#auth.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_plus

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_FORMS = frozenset(
    {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}
)
_HEX64 = re.compile(r"[0-9a-f]{64}")

MSG_MISSING = "AWS was not able to authenticate the request: access credentials are missing"
MSG_INVALID = "AWS was not able to validate the provided access credentials"


@dataclass(frozen=True, slots=True)
class Credential:
    """An access key as the account store hands it to the verifier."""

    access_key_id: str
    secret_access_key: str
    account_id: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"Credential(access_key_id={self.access_key_id!r}, account_id={self.account_id!r})"


@dataclass(frozen=True, slots=True)
class SigningRules:
    """How one service's requests are signed: botocore's ``SigV4Auth`` by default."""

    #: Normalise the path (``.``, ``..``, repeated ``/``) and URI-encode it again (all but S3).
    normalize_path: bool = True
    #: Accept ``x-amz-content-sha256: UNSIGNED-PAYLOAD`` and unsigned presigned URLs (S3).
    unsigned_payload: bool = False


DEFAULT_RULES = SigningRules()
S3_RULES = SigningRules(normalize_path=False, unsigned_payload=True)


@dataclass(frozen=True, slots=True)
class StreamSeed:
    """What the chunk signatures of a ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD…`` body chain from:
    the request's signing key, time and scope, and its (verified) seed signature."""

    key: bytes = field(repr=False)
    amz_date: str
    scope: str
    signature: str


@dataclass(frozen=True, slots=True)
class PayloadClaim:
    """What a body streamed after verification (``verify_sigv4(body=None)``) must match:
    ``content_sha256`` is the ``x-amz-content-sha256`` value (a hex SHA-256,
    ``UNSIGNED-PAYLOAD`` or one of :data:`STREAMING_FORMS`); ``seed`` is set for the signed
    streaming forms."""

    content_sha256: str
    seed: StreamSeed | None = None


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Who signed a request and for which region and service (from the credential scope);
    ``payload`` only when the body was left to the caller (``body=None``)."""

    access_key_id: str
    account_id: str
    region: str
    service: str
    payload: PayloadClaim | None = None


CredentialLookup = Callable[[str], Credential | None]
"""access key id -> its Credential, or None when the key is unknown (or disabled)."""


@dataclass(frozen=True, slots=True)
class _Signed:
    """What a request claims: its scope, timestamp, signed header names and signature."""

    access_key_id: str
    date: str
    region: str
    service: str
    amz_date: str
    signed_headers: tuple[str, ...]
    signature: str
    expires: int | None  # presigned URLs only


def _fail(message: str) -> KilnError:
    return KilnError(errors.AuthFailure, message)


def scope_service(query_string: str, headers: Sequence[tuple[str, str]]) -> str | None:
    """The service a request's credential scope *claims* (not verified), to pick the protocol
    its errors are rendered in before the signature is checked; None when there is no scope."""
    for name, value in headers:
        if name.lower() == "authorization":
            credential = value.partition("Credential=")[2].split(",", 1)[0]
            parts = credential.strip().split("/")
            return parts[3] if len(parts) == 5 else None
    for key, value in _split_query(query_string):
        if key == "X-Amz-Credential":
            parts = value.split("/")
            return parts[3] if len(parts) == 5 else None
    return None


def verify_sigv4(
    method: str,
    path: str,
    query_string: str,
    headers: Sequence[tuple[str, str]] | Mapping[str, str],
    body: bytes | None,
    lookup: CredentialLookup,
    now: datetime,
    rules: SigningRules = DEFAULT_RULES,
) -> AuthResult:
    """Check the SigV4 signature of one HTTP request and return who signed it.

    ``path`` is the raw (still percent-encoded) request path, ``query_string`` the raw query
    without ``?``, ``headers`` every header (repeats allowed), ``now`` an aware UTC datetime,
    ``rules`` the service's signing rules (:data:`S3_RULES` for S3). ``body=None`` (S3 only,
    under rules with ``unsigned_payload``): the caller streams the body and checks it against
    the returned ``AuthResult.payload``; the request must then say ``x-amz-content-sha256``
    (a presigned URL means ``UNSIGNED-PAYLOAD``).

    :raises KilnError: AuthFailure when the signature is missing or garbled, the key is unknown,
        the signature does not match, or the request time is more than 5 minutes from ``now``
        (or a presigned URL has expired).
    """
    header_list = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    lowered = [(name.lower(), value) for name, value in header_list]
    query = _split_query(query_string)
    authorization = [value for name, value in lowered if name == "authorization"]
    if authorization:
        signed = _from_header(authorization[0], lowered)
        canonical_query = _canonical_query(query)
    elif any(key == "X-Amz-Signature" for key, _ in query):
        signed = _from_query(query)
        canonical_query = _canonical_query([(k, v) for k, v in query if k != "X-Amz-Signature"])
    else:
        raise _fail(MSG_MISSING)

    request_time = _check_time(signed, now)
    credential = lookup(signed.access_key_id)
    if credential is None:
        log.debug("SigV4: unknown access key %s", signed.access_key_id)
        raise _fail(MSG_INVALID)

    presigned = signed.expires is not None
    if body is None:
        payload_hash = _claimed_payload(lowered, rules.unsigned_payload, presigned)
    else:
        payload_hash = _payload_hash(lowered, body, rules.unsigned_payload, presigned)
    canonical = "\n".join(
        [
            method.upper(),
            _canonical_uri(path) if rules.normalize_path else (path or "/"),
            canonical_query,
            _canonical_headers(signed.signed_headers, lowered),
            ";".join(signed.signed_headers),
            payload_hash,
        ]
    )
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, signed.amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = _signing_key(credential.secret_access_key, signed.date, signed.region, signed.service)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        log.debug("SigV4: signature mismatch for access key %s", signed.access_key_id)
        raise _fail(MSG_INVALID)
    log.debug("SigV4 ok: key %s, request time %s", signed.access_key_id, request_time)
    claim = None
    if body is None:
        seed = None
        if payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
            seed = StreamSeed(key, signed.amz_date, scope, signed.signature)
        claim = PayloadClaim(payload_hash, seed)
    return AuthResult(
        access_key_id=credential.access_key_id,
        account_id=credential.account_id,
        region=signed.region,
        service=signed.service,
        payload=claim,
    )


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _parse_scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise _fail(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'"
        )
    if parts[4] != "aws4_request":
        raise _fail(
            f"Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{parts[4]}'."
        )
    return parts[0], parts[1], parts[2], parts[3]


def _from_header(value: str, headers: list[tuple[str, str]]) -> _Signed:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _fail(
            f"Unsupported authorization type: {algorithm or 'none'}; "
            f"only {ALGORITHM} (Signature Version 4) is accepted."
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, field_value = item.strip().partition("=")
        if sep:
            fields[name] = field_value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise _fail(f"Authorization header requires '{required}' parameter.")
    key, date, region, service = _parse_scope(fields["Credential"])
    amz_date = next((v for n, v in headers if n == "x-amz-date"), None)
    if amz_date is None:
        http_date = next((v for n, v in headers if n == "date"), None)
        if http_date is None:
            raise _fail(
                "Authorization header requires existence of either a 'X-Amz-Date' "
                "or a 'Date' header."
            )
        amz_date = _http_date_to_amz(http_date)
    return _Signed(
        access_key_id=key,
        date=date,
        region=region,
        service=service,
        amz_date=amz_date.strip(),
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
        expires=None,
    )


def _from_query(query: list[tuple[str, str]]) -> _Signed:
    params = dict(query)
    for required in (
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ):
        if not params.get(required):
            raise _fail(f"AWS query-string parameters must include '{required}'.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _fail(f"X-Amz-Algorithm only supports '{ALGORITHM}'.")
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        raise _fail("X-Amz-Expires should be a number") from None
    if not 0 < expires <= 604800:
        raise _fail("X-Amz-Expires must be between 1 and 604800 seconds.")
    key, date, region, service = _parse_scope(params["X-Amz-Credential"])
    return _Signed(
        access_key_id=key,
        date=date,
        region=region,
        service=service,
        amz_date=params["X-Amz-Date"],
        signed_headers=tuple(params["X-Amz-SignedHeaders"].split(";")),
        signature=params["X-Amz-Signature"],
        expires=expires,
    )


def _http_date_to_amz(value: str) -> str:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise _fail(f"Invalid date header: '{value}'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime(AMZ_DATE_FORMAT)


def _check_time(signed: _Signed, now: datetime) -> datetime:
    try:
        request_time = datetime.strptime(signed.amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _fail(
            f"Invalid X-Amz-Date '{signed.amz_date}': expected YYYYMMDD'T'HHMMSS'Z'."
        ) from None
    if signed.amz_date[:8] != signed.date:
        raise _fail(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{signed.date}' != '{signed.amz_date[:8]}'"
        )
    stamp = signed.amz_date
    if request_time - now > MAX_SKEW:
        raise _fail(
            f"Signature not yet current: {stamp} is still later than "
            f"{(now + MAX_SKEW).strftime(AMZ_DATE_FORMAT)} "
            f"({now.strftime(AMZ_DATE_FORMAT)} + 5 min.)"
        )
    window = MAX_SKEW if signed.expires is None else timedelta(seconds=signed.expires)
    if now - request_time > window:
        what = "Signature expired" if signed.expires is None else "Request has expired"
        raise _fail(
            f"{what}: {stamp} is now earlier than "
            f"{(now - window).strftime(AMZ_DATE_FORMAT)} "
            f"({now.strftime(AMZ_DATE_FORMAT)} - {window})"
        )
    return request_time


def _split_query(query_string: str) -> list[tuple[str, str]]:
    # Form-style decoding: botocore sends a space as '+' but signs it as '%20'.
    pairs: list[tuple[str, str]] = []
    for part in query_string.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_uri(path: str) -> str:
    segments = [s for s in (path or "/").split("/") if s and s != "."]
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    normalized = "/" + "/".join(out)
    if path.endswith("/") and out:
        normalized += "/"
    return quote(normalized, safe="/~")


def _canonical_headers(names: tuple[str, ...], headers: list[tuple[str, str]]) -> str:
    if "host" not in names:
        raise _fail("Signature must sign the 'host' header.")
    if list(names) != sorted(set(names)) or any(n != n.lower().strip() for n in names):
        raise _fail("SignedHeaders must be lower-case header names, sorted, without repeats.")
    lines: list[str] = []
    for name in names:
        values = [" ".join(value.split()) for n, value in headers if n == name]
        if not values:
            raise _fail(f"Header '{name}' is listed in SignedHeaders but missing.")
        lines.append(f"{name}:{','.join(values)}")
    return "\n".join(lines) + "\n"


def _claimed_payload(headers: list[tuple[str, str]], unsigned_ok: bool, presigned: bool) -> str:
    """The payload hash a streamed body is signed with: the claim itself, checked later."""
    claimed = next((v.strip() for n, v in headers if n == "x-amz-content-sha256"), None)
    if not unsigned_ok:
        raise ValueError("only a service with unsigned_payload rules (S3) streams its bodies")
    if claimed is None and presigned:
        return UNSIGNED_PAYLOAD
    if claimed is None:
        raise _fail("Missing required header for this request: x-amz-content-sha256")
    if claimed == UNSIGNED_PAYLOAD or claimed in STREAMING_FORMS or _HEX64.fullmatch(claimed):
        return claimed
    raise _fail(f"x-amz-content-sha256 '{claimed[:80]}' is not a SHA-256 or a payload form.")


def _payload_hash(
    headers: list[tuple[str, str]], body: bytes, unsigned_ok: bool, presigned: bool
) -> str:
    claimed = next((v.strip() for n, v in headers if n == "x-amz-content-sha256"), None)
    if unsigned_ok and (claimed == UNSIGNED_PAYLOAD or (claimed is None and presigned)):
        return UNSIGNED_PAYLOAD
    if unsigned_ok and claimed is not None and claimed.startswith("STREAMING-"):
        raise _fail(f"x-amz-content-sha256 '{claimed[:64]}' (aws-chunked) is not supported.")
    actual = hashlib.sha256(body).hexdigest()
    if claimed is not None and claimed != actual:
        # UNSIGNED-PAYLOAD lands here too: an EC2 body is the request itself and must be signed.
        raise _fail("The provided 'x-amz-content-sha256' header does not match the request body.")
    return actual
