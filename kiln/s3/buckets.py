"""Bucket handlers: params -> kiln/services/buckets/buckets.py -> the output shape's dict."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.s3.params import (
    caller_of,
    catalog_time,
    check_expected_owner,
    opt_int,
    opt_str,
    refuse,
    req_str,
    services_of,
)
from kiln.services.buckets import buckets as rules
from kiln.services.buckets.buckets import CreateBucketRequest


def create_bucket(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    refuse(
        params,
        (
            "ACL",
            "GrantFullControl",
            "GrantRead",
            "GrantReadACP",
            "GrantWrite",
            "GrantWriteACP",
            "ObjectLockEnabledForBucket",
        ),
    )
    config = params.get("CreateBucketConfiguration")
    constraint = None
    if isinstance(config, Mapping):
        if config.get("Location") is not None or config.get("Bucket") is not None:
            refuse(dict(config), ("Location", "Bucket"))  # directory buckets
        value = config.get("LocationConstraint")
        constraint = value if isinstance(value, str) else None
    record = rules.create_bucket(
        services_of(ctx), caller_of(ctx), CreateBucketRequest(req_str(params, "Bucket"), constraint)
    )
    return {"Location": f"/{record.name}"}


def list_buckets(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    prefix, region = opt_str(params, "Prefix"), opt_str(params, "BucketRegion")
    found = rules.list_buckets(
        services_of(ctx),
        caller_of(ctx),
        opt_int(params, "MaxBuckets"),
        opt_str(params, "ContinuationToken"),
    )
    buckets = [
        b
        for b in found.buckets
        if (prefix is None or b.name.startswith(prefix)) and (region is None or b.region == region)
    ]
    return {
        "Buckets": [
            {"Name": b.name, "CreationDate": catalog_time(b.created), "BucketRegion": b.region}
            for b in buckets
        ],
        "Owner": {"ID": ctx.account_id, "DisplayName": ctx.account_id},
        "ContinuationToken": found.continuation_token,
        "Prefix": prefix,
    }


def head_bucket(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    record = rules.head_bucket(services_of(ctx), caller_of(ctx), req_str(params, "Bucket"))
    return {"BucketRegion": record.region, "AccessPointAlias": False}


def get_bucket_location(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    where = rules.get_bucket_location(services_of(ctx), caller_of(ctx), req_str(params, "Bucket"))
    return {"LocationConstraint": where}


def delete_bucket(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    check_expected_owner(ctx, params)
    rules.delete_bucket(services_of(ctx), caller_of(ctx), req_str(params, "Bucket"))
    return {}
