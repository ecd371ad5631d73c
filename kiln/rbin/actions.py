"""The supported Recycle Bin actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.rbin import rules

ACTIONS: Mapping[str, Handler] = {
    "CreateRule": rules.create_rule,
    "GetRule": rules.get_rule,
    "ListRules": rules.list_rules,
    "UpdateRule": rules.update_rule,
    "DeleteRule": rules.delete_rule,
    "LockRule": rules.lock_rule,
    "UnlockRule": rules.unlock_rule,
    "TagResource": rules.tag_resource,
    "UntagResource": rules.untag_resource,
    "ListTagsForResource": rules.list_tags_for_resource,
}
