"""The supported KMS actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.kms import grants, keys

ACTIONS: Mapping[str, Handler] = {
    "CreateKey": keys.create_key,
    "DescribeKey": keys.describe_key,
    "ListKeys": keys.list_keys,
    "EnableKey": keys.enable_key,
    "DisableKey": keys.disable_key,
    "ScheduleKeyDeletion": keys.schedule_key_deletion,
    "CancelKeyDeletion": keys.cancel_key_deletion,
    "CreateAlias": keys.create_alias,
    "ListAliases": keys.list_aliases,
    "DeleteAlias": keys.delete_alias,
    "TagResource": keys.tag_resource,
    "ListResourceTags": keys.list_resource_tags,
    "CreateGrant": grants.create_grant,
    "ListGrants": grants.list_grants,
    "RevokeGrant": grants.revoke_grant,
    "RetireGrant": grants.retire_grant,
}
