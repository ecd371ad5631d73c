"""Multipart upload handlers: params -> kiln/services/buckets/multipart.py -> the output."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.s3.objects import CONTENT_HEADERS, PUT_REFUSED, checksums_of, spooled
from kiln.s3.params import (
    caller_of,
    catalog_time,
    check_expected_owner,
    opt_int,
    opt_str,
    refuse,
    req_str,
    services_of,
    str_map,
)
from kiln.services.buckets import multipart as rules
from kiln.services.buckets.objects import attributes_from


def _owner(ctx: RequestContext) -> dict[str, object]:
    return {"ID": ctx.account_id, "DisplayName": ctx.account_id}


def create_multipart_upload(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, PUT_REFUSED)
    check_expected_owner(ctx, params)
    headers = {k: v for k in CONTENT_HEADERS if (v := opt_str(params, k)) is not None}
    bucket, key = req_str(params, "Bucket"), req_str(params, "Key")
    upload = rules.create_multipart_upload(
        services_of(ctx),
        caller_of(ctx),
        bucket,
        key,
        attributes_from(opt_str(params, "ContentType"), str_map(params, "Metadata"), headers),
    )
    return {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id}


def upload_part(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, ("SSECustomerAlgorithm", "SSECustomerKey"))
    check_expected_owner(ctx, params)
    body = spooled(params)
    part = rules.upload_part(
        services_of(ctx),
        caller_of(ctx),
        rules.UploadPartRequest(
            req_str(params, "Bucket"),
            req_str(params, "Key"),
            req_str(params, "UploadId"),
            int(str(params["PartNumber"])),
            body.path,
            body.md5,
            body.size,
        ),
    )
    return {"ETag": part.etag, **checksums_of(body)}


def complete_multipart_upload(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, ("IfMatch", "IfNoneMatch", "SSECustomerAlgorithm", "SSECustomerKey"))
    check_expected_owner(ctx, params)
    given = params.get("MultipartUpload")
    listed = given.get("Parts") if isinstance(given, Mapping) else None
    parts: list[tuple[int, str]] = []
    for item in listed if isinstance(listed, list) else []:
        assert isinstance(item, Mapping)
        parts.append((int(str(item.get("PartNumber", 0))), str(item.get("ETag", ""))))
    bucket, key = req_str(params, "Bucket"), req_str(params, "Key")
    info = rules.complete_multipart_upload(
        services_of(ctx), caller_of(ctx), bucket, key, req_str(params, "UploadId"), parts
    )
    return {"Location": f"/{bucket}/{key}", "Bucket": bucket, "Key": key, "ETag": info.etag}


def abort_multipart_upload(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    rules.abort_multipart_upload(
        services_of(ctx),
        caller_of(ctx),
        req_str(params, "Bucket"),
        req_str(params, "Key"),
        req_str(params, "UploadId"),
    )
    return {}


def list_parts(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    max_parts = opt_int(params, "MaxParts")
    found = rules.list_parts(
        services_of(ctx),
        caller_of(ctx),
        req_str(params, "Bucket"),
        req_str(params, "Key"),
        req_str(params, "UploadId"),
        max_parts,
        opt_int(params, "PartNumberMarker"),
    )
    return {
        "Bucket": found.upload.bucket,
        "Key": found.upload.key,
        "UploadId": found.upload.upload_id,
        "PartNumberMarker": opt_int(params, "PartNumberMarker") or 0,
        "NextPartNumberMarker": found.next_marker,
        "MaxParts": max_parts if max_parts is not None else rules.MAX_LISTED,
        "IsTruncated": found.truncated,
        "Parts": [
            {
                "PartNumber": p.part_number,
                "LastModified": datetime.fromtimestamp(int(p.modified), UTC),
                "ETag": p.etag,
                "Size": p.size,
            }
            for p in found.parts
        ]
        or None,
        "Initiator": _owner(ctx),
        "Owner": _owner(ctx),
        "StorageClass": "STANDARD",
    }


def list_multipart_uploads(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(params, ("Delimiter", "KeyMarker", "UploadIdMarker"))
    check_expected_owner(ctx, params)
    bucket, prefix = req_str(params, "Bucket"), opt_str(params, "Prefix") or ""
    max_uploads = opt_int(params, "MaxUploads")
    uploads = rules.list_multipart_uploads(
        services_of(ctx), caller_of(ctx), bucket, prefix, max_uploads
    )
    return {
        "Bucket": bucket,
        "Prefix": prefix or None,
        "MaxUploads": max_uploads if max_uploads is not None else rules.MAX_LISTED,
        "IsTruncated": False,
        "Uploads": [
            {
                "UploadId": u.upload_id,
                "Key": u.key,
                "Initiated": catalog_time(u.initiated),
                "StorageClass": "STANDARD",
                "Owner": _owner(ctx),
                "Initiator": _owner(ctx),
            }
            for u in uploads
        ]
        or None,
    }
