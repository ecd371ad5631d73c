"""KMS grant handlers: params -> the rule in kiln/services/keys/kms_grants.py -> the output."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.catalog.records import KmsGrantRecord, KmsKeyRecord
from kiln.kms.keys import _caller, _catalog, _opt_int, _opt_str, _str, _time
from kiln.services.keys import kms_grants as rules
from kiln.services.keys.kms_state import key_arn


def _strs(params: Params, key: str) -> tuple[str, ...]:
    value = params.get(key)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def grant_entry(key: KmsKeyRecord, g: KmsGrantRecord) -> dict[str, object]:
    """A grant as KMS's ``GrantListEntry``."""
    return {
        "KeyId": key_arn(key),
        "GrantId": g.grant_id,
        "Name": g.name or "",
        "CreationDate": _time(g.created),
        "GranteePrincipal": g.grantee_principal,
        "RetiringPrincipal": g.retiring_principal,
        "IssuingAccount": f"arn:aws:iam::{g.issuing_account}:root",
        "Operations": list(g.operations),
    }


def create_grant(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = rules.CreateGrantRequest(
        key_id=_str(params, "KeyId"),
        grantee_principal=_opt_str(params, "GranteePrincipal"),
        operations=_strs(params, "Operations"),
        retiring_principal=_opt_str(params, "RetiringPrincipal"),
        name=_opt_str(params, "Name"),
        constraints="Constraints" in params,
        service_principal="GranteeServicePrincipal" in params
        or "RetiringServicePrincipal" in params,
        dry_run=params.get("DryRun") is True,
    )
    made = rules.create_grant(_catalog(ctx), _caller(ctx), req)
    return {"GrantId": made.grant_id, "GrantToken": made.grant_token}


def list_grants(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = rules.ListGrantsRequest(
        key_id=_str(params, "KeyId"),
        limit=_opt_int(params, "Limit"),
        marker=_opt_str(params, "Marker"),
        grant_id=_opt_str(params, "GrantId"),
        grantee_principal=_opt_str(params, "GranteePrincipal"),
    )
    key, page = rules.list_grants(_catalog(ctx), _caller(ctx), req)
    return {
        "Grants": [grant_entry(key, g) for g in page.items],
        "NextMarker": page.next_marker,
        "Truncated": page.next_marker is not None,
    }


def revoke_grant(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.revoke_grant(
        _catalog(ctx),
        _caller(ctx),
        _str(params, "KeyId"),
        _str(params, "GrantId"),
        dry_run=params.get("DryRun") is True,
    )
    return {}


def retire_grant(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = rules.RetireGrantRequest(
        grant_token=_opt_str(params, "GrantToken"),
        key_id=_opt_str(params, "KeyId"),
        grant_id=_opt_str(params, "GrantId"),
        dry_run=params.get("DryRun") is True,
    )
    rules.retire_grant(_catalog(ctx), _caller(ctx), req)
    return {}
