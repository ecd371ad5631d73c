"""Object handlers: params -> kiln/services/buckets/objects.py, list_objects.py -> the output.

PutObject's ``Body`` is the file the edge streamed (:class:`~kiln.aws.wire.SpooledBody`);
GetObject's is the open object file (:class:`~kiln.aws.wire.FileBody`), which the edge streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from kiln import errors
from kiln.aws.context import RequestContext
from kiln.aws.wire import FileBody, Params, SpooledBody
from kiln.errors import KilnError
from kiln.runtime.bucket_files import ObjectInfo
from kiln.s3.params import (
    caller_of,
    check_expected_owner,
    opt_int,
    opt_str,
    opt_time,
    refuse,
    req_str,
    services_of,
    str_map,
)
from kiln.services.buckets import list_objects as list_rules
from kiln.services.buckets import objects as rules
from kiln.services.buckets.list_objects import ListObjectsRequest, ListObjectsResult
from kiln.services.buckets.objects import Conditions, GetObjectRequest, GetObjectResult

CONTENT_HEADERS = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")
#: Members Kiln would get wrong by ignoring them.
PUT_REFUSED = (
    "ACL",
    "GrantFullControl",
    "GrantRead",
    "GrantReadACP",
    "GrantWriteACP",
    "SSECustomerAlgorithm",
    "SSECustomerKey",
    "SSEKMSKeyId",
    "Tagging",
    "ObjectLockMode",
    "ObjectLockRetainUntilDate",
    "ObjectLockLegalHoldStatus",
    "WebsiteRedirectLocation",
    "IfMatch",
    "IfNoneMatch",
    "WriteOffsetBytes",
)
GET_REFUSED = ("VersionId", "SSECustomerAlgorithm", "SSECustomerKey", "PartNumber")
CHECKSUM_MEMBERS = {"crc32": "ChecksumCRC32", "sha1": "ChecksumSHA1", "sha256": "ChecksumSHA256"}


def spooled(params: Params) -> SpooledBody:
    body = params.get("Body")
    if not isinstance(body, SpooledBody):
        raise TypeError("the edge streams S3 bodies: mount S3 with a spool directory")
    return body


def checksums_of(body: SpooledBody) -> dict[str, object]:
    return {CHECKSUM_MEMBERS[a]: v for a, v in body.checksums.items() if a in CHECKSUM_MEMBERS}


def put_object(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, PUT_REFUSED)
    check_expected_owner(ctx, params)
    body = spooled(params)
    headers = {k: v for k in CONTENT_HEADERS if (v := opt_str(params, k)) is not None}
    info = rules.put_object(
        services_of(ctx),
        caller_of(ctx),
        rules.PutObjectRequest(
            req_str(params, "Bucket"),
            req_str(params, "Key"),
            body.path,
            body.md5,
            rules.attributes_from(
                opt_str(params, "ContentType"), str_map(params, "Metadata"), headers
            ),
        ),
    )
    return {"ETag": info.etag, **checksums_of(body)}


def _get_request(params: Params) -> GetObjectRequest:
    refuse(params, GET_REFUSED)
    return GetObjectRequest(
        req_str(params, "Bucket"),
        req_str(params, "Key"),
        opt_str(params, "Range"),
        Conditions(
            opt_str(params, "IfMatch"),
            opt_str(params, "IfNoneMatch"),
            opt_time(params, "IfModifiedSince"),
            opt_time(params, "IfUnmodifiedSince"),
        ),
    )


def _described(found: GetObjectResult, params: Params) -> dict[str, object]:
    info = found.info
    out: dict[str, object] = {
        "AcceptRanges": "bytes",
        "LastModified": info.modified,
        "ContentLength": found.range.length if found.range else info.size,
        "ETag": info.etag,
        "ContentType": info.attributes.content_type,
        "Metadata": dict(info.attributes.metadata),
        **info.attributes.headers,
    }
    if found.range is not None:
        out["ContentRange"] = found.range.content_range
    for member in CONTENT_HEADERS:
        override = opt_str(params, f"Response{member}")
        if override is not None:
            out[member] = override
    if (content_type := opt_str(params, "ResponseContentType")) is not None:
        out["ContentType"] = content_type
    return out


def get_object(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    found = rules.get_object(services_of(ctx), caller_of(ctx), _get_request(params))
    assert found.file is not None  # GetObject opens it
    start, length = (found.range.start, found.range.length) if found.range else (0, found.info.size)
    try:
        out = _described(found, params)
    except BaseException:
        found.file.close()
        raise
    return {**out, "Body": FileBody(found.file, start, length)}


def head_object(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    found = rules.head_object(services_of(ctx), caller_of(ctx), _get_request(params))
    return _described(found, params)


def delete_object(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, ("VersionId", "MFA", "IfMatch", "IfMatchLastModifiedTime", "IfMatchSize"))
    check_expected_owner(ctx, params)
    rules.delete_object(
        services_of(ctx), caller_of(ctx), req_str(params, "Bucket"), req_str(params, "Key")
    )
    return {}


def delete_objects(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, ("MFA",))
    check_expected_owner(ctx, params)
    delete = params["Delete"]
    assert isinstance(delete, Mapping)  # required structure: the protocol checked it
    objects = delete.get("Objects") or []
    assert isinstance(objects, list)
    keys: list[str] = []
    for item in objects:
        assert isinstance(item, Mapping)
        if item.get("VersionId") is not None:
            raise KilnError(errors.S3NotImplemented, "Kiln does not support VersionId.")
        keys.append(str(item["Key"]))
    done = rules.delete_objects(services_of(ctx), caller_of(ctx), req_str(params, "Bucket"), keys)
    quiet = delete.get("Quiet") is True
    return {
        "Deleted": [] if quiet else [{"Key": k} for k in done.deleted],
        "Errors": [{"Key": k, "Code": c, "Message": m} for k, c, m in done.failed],
    }


def _list_request(params: Params, after: str | None, token: str | None) -> ListObjectsRequest:
    encoding = opt_str(params, "EncodingType")
    if encoding not in (None, "url"):
        raise KilnError(errors.InvalidArgument, "Invalid Encoding Method specified in Request")
    max_keys = opt_int(params, "MaxKeys")
    return ListObjectsRequest(
        req_str(params, "Bucket"),
        opt_str(params, "Prefix") or "",
        opt_str(params, "Delimiter") or "",
        list_rules.MAX_KEYS if max_keys is None else max_keys,
        after or "",
        token,
    )


def _listed(params: Params, req: ListObjectsRequest, found: ListObjectsResult) -> dict[str, object]:
    url = opt_str(params, "EncodingType") == "url"

    def enc(text: str | None) -> str | None:
        return quote(text, safe="/") if url and text is not None else text

    def entry(info: ObjectInfo) -> dict[str, object]:
        item: dict[str, object] = {
            "Key": enc(info.key),
            "LastModified": info.modified,
            "ETag": info.etag,
            "Size": info.size,
            "StorageClass": "STANDARD",
        }
        return item

    return {
        "IsTruncated": found.truncated,
        "Contents": [entry(o) for o in found.objects] or None,
        "Name": req.bucket,
        "Prefix": enc(req.prefix),
        "Delimiter": enc(req.delimiter) if req.delimiter else None,
        "MaxKeys": req.max_keys,
        "CommonPrefixes": [{"Prefix": enc(p)} for p in found.common_prefixes] or None,
        "EncodingType": "url" if url else None,
    }


def list_objects_v2(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    token = opt_str(params, "ContinuationToken")
    req = _list_request(params, opt_str(params, "StartAfter"), token)
    found = list_rules.list_objects_v2(services_of(ctx), caller_of(ctx), req)
    out = _listed(params, req, found)
    if params.get("FetchOwner") is True and isinstance(out["Contents"], list):
        for item in out["Contents"]:
            assert isinstance(item, dict)
            item["Owner"] = {"ID": ctx.account_id, "DisplayName": ctx.account_id}
    start_after = opt_str(params, "StartAfter")
    return {
        **out,
        "KeyCount": len(found.objects) + len(found.common_prefixes),
        "ContinuationToken": token,
        "NextContinuationToken": found.next_token,
        "StartAfter": quote(start_after, safe="/")
        if start_after and out["EncodingType"]
        else start_after,
    }


def list_objects(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    marker = opt_str(params, "Marker")
    req = _list_request(params, marker, None)
    found = list_rules.list_objects(services_of(ctx), caller_of(ctx), req)
    out = _listed(params, req, found)
    if isinstance(out["Contents"], list):
        for item in out["Contents"]:
            assert isinstance(item, dict)
            item["Owner"] = {"ID": ctx.account_id, "DisplayName": ctx.account_id}
    next_marker = found.next_marker if req.delimiter else None
    return {
        **out,
        "Marker": marker or "",
        "NextMarker": quote(next_marker, safe="/")
        if next_marker and out["EncodingType"]
        else next_marker,
    }
