"""Key pair handlers: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kiln.aws.context import RequestContext
from kiln.catalog.keypairs import KeyPairRecord
from kiln.ec2.tags import (
    Params,
    caller_of,
    filters,
    flag,
    opt_str,
    services_of,
    strs,
    tag_specs,
    tags_out,
)
from kiln.services.keys import key_pairs as rules


def ec2_datetime(text: str | None) -> datetime | None:
    """A catalog timestamp (``2026-11-23T19:08:02.000Z``) as the datetime the XML renders."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def key_pair_out(k: KeyPairRecord, include_public_key: bool = False) -> dict[str, object]:
    return {
        "KeyPairId": k.key_pair_id,
        "KeyName": k.key_name,
        "KeyType": k.key_type,
        "KeyFingerprint": k.key_fingerprint,
        "Tags": tags_out(k.tags) or [],
        "CreateTime": ec2_datetime(k.create_time),
        "PublicKey": f"{k.public_key} {k.key_name}" if include_public_key else None,
    }


def create_key_pair(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.create_key_pair(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "KeyName"),
        opt_str(params, "KeyType"),
        opt_str(params, "KeyFormat"),
        tag_specs(params),
        flag(params, "DryRun"),
    )
    k = res.key_pair
    return {
        "KeyPairId": k.key_pair_id,
        "KeyName": k.key_name,
        "KeyFingerprint": k.key_fingerprint,
        "KeyMaterial": res.key_material,
        "Tags": tags_out(k.tags) or [],
    }


def import_key_pair(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    material = params.get("PublicKeyMaterial")
    k = rules.import_key_pair(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "KeyName"),
        material if isinstance(material, bytes) else None,
        tag_specs(params),
        flag(params, "DryRun"),
    )
    return {
        "KeyPairId": k.key_pair_id,
        "KeyName": k.key_name,
        "KeyFingerprint": k.key_fingerprint,
        "Tags": tags_out(k.tags) or [],
    }


def describe_key_pairs(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = rules.describe_key_pairs(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("KeyNames")),
        strs(params.get("KeyPairIds")),
        filters(params),
        flag(params, "DryRun"),
    )
    include = flag(params, "IncludePublicKey")
    return {"KeyPairs": [key_pair_out(k, include) for k in found]}


def delete_key_pair(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    deleted = rules.delete_key_pair(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "KeyName"),
        opt_str(params, "KeyPairId"),
        flag(params, "DryRun"),
    )
    return {"Return": True, "KeyPairId": deleted}
