"""What every S3 handler shares: the wiring, the caller, typed reads of params, refusals."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from kiln import errors
from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.errors import KilnError
from kiln.services.buckets.access import bucket_of
from kiln.services.context import Caller, Services


def services_of(ctx: RequestContext) -> Services:
    if not isinstance(ctx.state, Services):
        raise TypeError("the S3 app was built without kiln.services.context.Services")
    return ctx.state


def caller_of(ctx: RequestContext) -> Caller:
    return Caller(ctx.account_id, ctx.region)


def req_str(params: Params, key: str) -> str:
    return str(params[key])  # the model marks it required: the protocol checked it is there


def opt_str(params: Params, key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) else None


def opt_int(params: Params, key: str) -> int | None:
    value = params.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_time(params: Params, key: str) -> datetime | None:
    value = params.get(key)
    return value if isinstance(value, datetime) else None


def str_map(params: Params, key: str) -> dict[str, str]:
    value = params.get(key)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def refuse(params: Params, members: Collection[str]) -> None:
    """NotImplemented for a member Kiln would otherwise ignore and so get wrong (customer keys,
    object lock, tags, public ACLs, versions)."""
    for name in members:
        value = params.get(name)
        if value is None or (name == "ACL" and value == "private"):
            continue
        raise KilnError(errors.S3NotImplemented, f"Kiln does not support {name} (docs/s3.md).")


def check_expected_owner(ctx: RequestContext, params: Params) -> None:
    """``x-amz-expected-bucket-owner``: AccessDenied unless the bucket is that account's (the
    caller's own, since only owners reach their buckets)."""
    expected = opt_str(params, "ExpectedBucketOwner")
    bucket = opt_str(params, "Bucket")
    if expected is not None and bucket is not None:
        owner = bucket_of(services_of(ctx), caller_of(ctx), bucket).owner_id
        if owner != expected:
            raise KilnError(errors.BucketAccessDenied, "Access Denied")


def catalog_time(stamp: str) -> datetime:
    """A catalog timestamp (``2026-11-23T19:08:02.000Z``) as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
