"""PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects.

The bytes arrive as a file the edge streamed and checked (kiln/aws/payload.py); PutObject moves
it into place (kiln/runtime/bucket_files.py), so an object of any size never sits in memory.
Its ETag is the quoted MD5, as S3's for a single PUT. GetObject hands back the open file and the
byte range to send: ``Range: bytes=a-b``, ``a-`` or ``-n`` (a suffix); a range that starts past
the end is ``InvalidRange`` (416), text that is not one range is ignored (the whole object), as
S3 does. The conditions ``If-Match`` / ``If-Unmodified-Since`` (``PreconditionFailed``, 412) and
``If-None-Match`` / ``If-Modified-Since`` (``NotModified``, 304) are S3's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from kiln import errors
from kiln.errors import KilnError
from kiln.runtime.bucket_files import ObjectAttributes, ObjectInfo, check_key
from kiln.services.buckets.access import bucket_files, bucket_of
from kiln.services.context import Caller, Services

log = logging.getLogger(__name__)

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
MAX_DELETE_KEYS = 1000


@dataclass(frozen=True, slots=True)
class PutObjectRequest:
    bucket: str
    key: str
    body: Path  # the streamed body, moved into place
    md5: str
    attributes: ObjectAttributes = field(default_factory=ObjectAttributes)


@dataclass(frozen=True, slots=True)
class Conditions:
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class GetObjectRequest:
    bucket: str
    key: str
    range: str | None = None
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    length: int
    total: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{self.total}"


@dataclass(frozen=True, slots=True)
class GetObjectResult:
    info: ObjectInfo
    file: BinaryIO | None  # None for HeadObject
    range: ByteRange | None  # None: the whole object


@dataclass(frozen=True, slots=True)
class DeleteObjectsResult:
    deleted: list[str]
    failed: list[tuple[str, str, str]]  # key, code, message


def no_such_key() -> KilnError:
    return KilnError(errors.NoSuchKey, "The specified key does not exist.")


def put_object(services: Services, caller: Caller, req: PutObjectRequest) -> ObjectInfo:
    """Store the body as object ``key`` of the caller's bucket, replacing any."""
    bucket_of(services, caller, req.bucket)
    check_key(req.key)
    info = bucket_files(services).put(req.bucket, req.key, req.body, f'"{req.md5}"', req.attributes)
    log.debug("s3://%s/%s: %d bytes", req.bucket, req.key, info.size)
    return info


def parse_range(text: str | None, size: int) -> ByteRange | None:
    """The one byte range ``text`` asks of an object of ``size`` bytes; None for the whole.

    :raises KilnError: InvalidRange when the range starts at or past the end."""
    found = _RANGE_RE.fullmatch(text.strip()) if text else None
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first, last = found.group(1), found.group(2)
    if first == "":  # the last n bytes
        n = int(last)
        if n == 0:
            raise _unsatisfiable(size)
        start = max(size - n, 0)
        return ByteRange(start, size - start, size)
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if last != "" and end < start:
        return None  # not a valid range: S3 ignores it
    if start >= size:
        raise _unsatisfiable(size)
    end = min(end, size - 1)
    return ByteRange(start, end - start + 1, size)


def _unsatisfiable(size: int) -> KilnError:
    return KilnError(
        errors.InvalidRange,
        f"The requested range is not satisfiable (the object has {size} bytes).",
    )


def _etag_matches(condition: str, etag: str) -> bool:
    wanted = {c.strip() for c in condition.split(",")}
    return "*" in wanted or etag in wanted or etag.strip('"') in wanted


def check_conditions(conditions: Conditions, info: ObjectInfo) -> None:
    """S3's order: If-Match, then If-Unmodified-Since (412); If-None-Match, then
    If-Modified-Since (304). An If-Match that holds overrules If-Unmodified-Since, and an
    If-None-Match that fails overrules If-Modified-Since, as RFC 7232 and S3 say."""
    c = conditions
    failed = KilnError(
        errors.PreconditionFailed, "At least one of the pre-conditions you specified did not hold"
    )
    if c.if_match is not None:
        if not _etag_matches(c.if_match, info.etag):
            raise failed
    elif c.if_unmodified_since is not None and info.modified > c.if_unmodified_since:
        raise failed
    not_modified = KilnError(errors.NotModified, "Not Modified")
    if c.if_none_match is not None:
        if _etag_matches(c.if_none_match, info.etag):
            raise not_modified
    elif c.if_modified_since is not None and info.modified <= c.if_modified_since:
        raise not_modified


def get_object(services: Services, caller: Caller, req: GetObjectRequest) -> GetObjectResult:
    """The object opened, and the range of it to send. The caller closes the file."""
    bucket_of(services, caller, req.bucket)
    opened = bucket_files(services).open(req.bucket, req.key)
    if opened is None:
        raise no_such_key()
    file, info = opened
    try:
        check_conditions(req.conditions, info)
        return GetObjectResult(info, file, parse_range(req.range, info.size))
    except BaseException:
        file.close()
        raise


def head_object(services: Services, caller: Caller, req: GetObjectRequest) -> GetObjectResult:
    """What GetObject would send, without the bytes."""
    bucket_of(services, caller, req.bucket)
    info = bucket_files(services).info(req.bucket, req.key)
    if info is None:
        raise no_such_key()
    check_conditions(req.conditions, info)
    return GetObjectResult(info, None, parse_range(req.range, info.size))


def delete_object(services: Services, caller: Caller, bucket: str, key: str) -> None:
    """Remove the object if it is there (deleting a missing key succeeds, as on S3)."""
    bucket_of(services, caller, bucket)
    check_key(key)
    bucket_files(services).delete(bucket, key)


def delete_objects(
    services: Services, caller: Caller, bucket: str, keys: Sequence[str]
) -> DeleteObjectsResult:
    """DeleteObject for each of ``keys`` (at most 1000); a key that cannot be one is reported
    in ``failed`` and the others are still deleted."""
    bucket_of(services, caller, bucket)
    if len(keys) > MAX_DELETE_KEYS:
        raise KilnError(errors.MalformedXML, "DeleteObjects takes at most 1000 keys.")
    files = bucket_files(services)
    deleted: list[str] = []
    failed: list[tuple[str, str, str]] = []
    for key in keys:
        try:
            check_key(key)
            files.delete(bucket, key)
        except KilnError as e:
            failed.append((key, e.code.code, e.message))
        else:
            deleted.append(key)
    return DeleteObjectsResult(deleted, failed)


def attributes_from(
    content_type: str | None, metadata: Mapping[str, str], headers: Mapping[str, str]
) -> ObjectAttributes:
    """What a PUT keeps: ``aws-chunked`` (the upload's own framing) is not a stored
    Content-Encoding, as S3 drops it."""
    kept = dict(headers)
    encoding = kept.get("ContentEncoding")
    if encoding is not None:
        rest = [e.strip() for e in encoding.split(",") if e.strip() and e.strip() != "aws-chunked"]
        if rest:
            kept["ContentEncoding"] = ",".join(rest)
        else:
            del kept["ContentEncoding"]
    return ObjectAttributes(
        content_type or "binary/octet-stream",
        {k.lower(): v for k, v in metadata.items()},
        kept,
    )
