"""ListObjectsV2 and ListObjects: a bucket's keys in S3's order, with prefix and delimiter.

Keys are walked from the files in S3's order (UTF-8 bytes, kiln/runtime/bucket_files.py). With
a delimiter, every key that has it after the prefix is rolled into one common prefix (counted
once against ``max_keys``, as S3 counts it). A page ends after ``max_keys`` (at most 1000)
entries; the continuation token is opaque to the client (base64 of where the walk stops) and
a token Kiln did not make is ``InvalidArgument``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from kiln import errors
from kiln.errors import KilnError
from kiln.runtime.bucket_files import ObjectInfo
from kiln.services.buckets.access import bucket_files, bucket_of
from kiln.services.context import Caller, Services

MAX_KEYS = 1000
_TOKEN_PREFIX = b"kiln1:"


@dataclass(frozen=True, slots=True)
class ListObjectsRequest:
    bucket: str
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS
    after: str = ""  # StartAfter / Marker: list keys after this one
    continuation_token: str | None = None  # ListObjectsV2 only


@dataclass(frozen=True, slots=True)
class ListObjectsResult:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    truncated: bool
    next_token: str | None  # ListObjectsV2's NextContinuationToken
    next_marker: str | None  # ListObjects' NextMarker (the last key or prefix of the page)


def _token(after: bytes) -> str:
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + after).decode()


def _after_of_token(token: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if not raw.startswith(_TOKEN_PREFIX):
        raise KilnError(errors.InvalidArgument, "The continuation token provided is incorrect")
    return raw[len(_TOKEN_PREFIX) :]


def list_objects_v2(
    services: Services, caller: Caller, req: ListObjectsRequest
) -> ListObjectsResult:
    """One page of the caller's bucket (see the module docstring)."""
    bucket_of(services, caller, req.bucket)
    if req.max_keys < 0:
        raise KilnError(errors.InvalidArgument, "max-keys must be a non-negative integer.")
    limit = min(req.max_keys, MAX_KEYS)
    after = req.after.encode()
    if req.continuation_token is not None:
        after = max(after, _after_of_token(req.continuation_token))
    files = bucket_files(services)
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    resume: bytes | None = None
    last = ""
    # The walk compares UTF-8 bytes; b"\xff" never occurs in UTF-8, so prefix + it sorts after
    # every key under that prefix.
    for key in files.keys(req.bucket, req.prefix, after):
        raw = key.encode()
        if raw <= after:
            continue
        cut = key.find(req.delimiter, len(req.prefix)) if req.delimiter else -1
        if len(objects) + len(prefixes) >= limit:
            resume = after
            break
        if cut >= 0:
            common = key[: cut + len(req.delimiter)]
            prefixes.append(common)
            after = common.encode() + b"\xff"
            last = common
            continue
        info = files.info(req.bucket, key)
        if info is not None:
            objects.append(info)
        after = raw
        last = key
    truncated = resume is not None
    return ListObjectsResult(
        objects,
        prefixes,
        truncated,
        _token(resume) if resume is not None else None,
        last if truncated else None,
    )


def list_objects(services: Services, caller: Caller, req: ListObjectsRequest) -> ListObjectsResult:
    """ListObjects (version 1): ListObjectsV2 with ``Marker`` as the start."""
    return list_objects_v2(services, caller, req)
