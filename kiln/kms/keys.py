"""KMS handlers: params -> the rule in kiln/services/keys/kms_keys.py -> the output shape's dict."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.catalog import Catalog
from kiln.catalog.records import KmsKeyRecord
from kiln.services.context import Caller, Services
from kiln.services.keys import kms_keys as rules
from kiln.services.keys.kms_state import key_arn

CREATE_KEY_OPTIONS = ("KeyUsage", "KeySpec", "CustomerMasterKeySpec", "Origin")


def _catalog(ctx: RequestContext) -> Catalog:
    if not isinstance(ctx.state, Services):
        raise TypeError("the KMS app was built without kiln.services.context.Services")
    return ctx.state.catalog


def _caller(ctx: RequestContext) -> Caller:
    return Caller(ctx.account_id, ctx.region)


def _str(params: Params, key: str) -> str:
    return str(params[key])  # the model marks it required: the protocol checked it is there


def _opt_str(params: Params, key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) else None


def _opt_int(params: Params, key: str) -> int | None:
    value = params.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tags(params: Params) -> tuple[tuple[str, str], ...]:
    value = params.get("Tags")
    items = value if isinstance(value, list) else []
    return tuple(
        (str(t.get("TagKey", "")), str(t.get("TagValue", "")))
        for t in items
        if isinstance(t, Mapping)
    )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def key_metadata(key: KmsKeyRecord) -> dict[str, object]:
    """A key as KMS's ``KeyMetadata``."""
    return {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key_arn(key),
        "CreationDate": _time(key.created),
        "Enabled": key.state == "Enabled",
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": key.state,
        "DeletionDate": _time(key.deletion_date),
        "Origin": "AWS_KMS",
        "KeyManager": "AWS" if rules.is_aws_managed(key) else "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": False,
        "PendingDeletionWindowInDays": key.pending_window_days,
    }


def create_key(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = rules.CreateKeyRequest(
        description=_opt_str(params, "Description") or "",
        options=tuple((name, str(params[name])) for name in CREATE_KEY_OPTIONS if name in params),
        multi_region=params.get("MultiRegion") is True,
        custom_key_store="CustomKeyStoreId" in params or "XksKeyId" in params,
        tags=_tags(params),
    )
    return {"KeyMetadata": key_metadata(rules.create_key(_catalog(ctx), _caller(ctx), req))}


def describe_key(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    key = rules.describe_key(_catalog(ctx), _caller(ctx), _str(params, "KeyId"))
    return {"KeyMetadata": key_metadata(key)}


def list_keys(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.list_keys(
        _catalog(ctx), _caller(ctx), _opt_int(params, "Limit"), _opt_str(params, "Marker")
    )
    return {
        "Keys": [{"KeyId": k.key_id, "KeyArn": key_arn(k)} for k in page.items],
        "NextMarker": page.next_marker,
        "Truncated": page.next_marker is not None,
    }


def enable_key(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.change_state(_catalog(ctx), _caller(ctx), "EnableKey", _str(params, "KeyId"))
    return {}


def disable_key(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.change_state(_catalog(ctx), _caller(ctx), "DisableKey", _str(params, "KeyId"))
    return {}


def schedule_key_deletion(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    key = rules.change_state(
        _catalog(ctx),
        _caller(ctx),
        "ScheduleKeyDeletion",
        _str(params, "KeyId"),
        _opt_int(params, "PendingWindowInDays"),
    )
    return {
        "KeyId": key_arn(key),
        "DeletionDate": _time(key.deletion_date),
        "KeyState": key.state,
        "PendingWindowInDays": key.pending_window_days,
    }


def cancel_key_deletion(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    key = rules.change_state(
        _catalog(ctx), _caller(ctx), "CancelKeyDeletion", _str(params, "KeyId")
    )
    return {"KeyId": key_arn(key)}


def create_alias(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.create_alias(
        _catalog(ctx), _caller(ctx), _str(params, "AliasName"), _str(params, "TargetKeyId")
    )
    return {}


def delete_alias(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_alias(_catalog(ctx), _caller(ctx), _str(params, "AliasName"))
    return {}


def list_aliases(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.list_aliases(
        _catalog(ctx),
        _caller(ctx),
        _opt_str(params, "KeyId"),
        _opt_int(params, "Limit"),
        _opt_str(params, "Marker"),
    )
    return {
        "Aliases": [
            {
                "AliasName": a.alias_name,
                "AliasArn": a.alias_arn,
                "TargetKeyId": a.target_key_id,
                "CreationDate": _time(a.created),
                "LastUpdatedDate": _time(a.created),
            }
            for a in page.items
        ],
        "NextMarker": page.next_marker,
        "Truncated": page.next_marker is not None,
    }


def tag_resource(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.tag_resource(_catalog(ctx), _caller(ctx), _str(params, "KeyId"), _tags(params))
    return {}


def list_resource_tags(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.list_resource_tags(
        _catalog(ctx),
        _caller(ctx),
        _str(params, "KeyId"),
        _opt_int(params, "Limit"),
        _opt_str(params, "Marker"),
    )
    return {
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in page.items],
        "NextMarker": page.next_marker,
        "Truncated": page.next_marker is not None,
    }
