"""Recycle Bin retention rules: CreateRule, GetRule, ListRules, UpdateRule, DeleteRule,
LockRule, UnlockRule and the rules' tags (TagResource, UntagResource, ListTagsForResource).

A rule is the caller's, in the caller's region. Lock states (docs/recycle-bin.md#locks): a rule
never locked has none; ``locked`` rules cannot be changed or deleted; UnlockRule starts the
unlock delay (``pending_unlock`` until ``LockEndTime``, still unchangeable), after which the rule
is ``unlocked``. Time is ``services.recycle_bin_clock``.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import recycle_bin as cat
from kiln.catalog.records import RetentionRuleRecord, ec2_time
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.validate import decode_token, encode_token

log = logging.getLogger(__name__)

#: The days a rule may keep each resource type (AWS: volumes 1-7, snapshots and AMIs 1-365).
RETENTION_DAYS = {"EBS_VOLUME": (1, 7), "EBS_SNAPSHOT": (1, 365), "EC2_IMAGE": (1, 365)}
MAX_TAGS = 50
_ID_ALPHABET = string.ascii_letters + string.digits
_IDENTIFIER = re.compile(r"^[0-9a-zA-Z]{11}$")
_DESCRIPTION = re.compile(r"^[\S ]{0,255}$")
_TAG_CHARS = frozenset("_.:/=+-@")
_ARN = re.compile(r"^arn:aws[a-z-]*:rbin:([a-z0-9-]+):(\d{12}):rule/([0-9a-zA-Z]{11})$")

TagPair = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class CreateRuleRequest:
    resource_type: str
    retention_days: int
    description: str | None = None
    resource_tags: tuple[TagPair, ...] = ()
    exclude_tags: tuple[TagPair, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    unlock_delay_days: int | None = None  # LockConfiguration: create the rule locked


@dataclass(frozen=True, slots=True)
class UpdateRuleRequest:
    identifier: str
    retention_days: int | None = None
    description: str | None = None
    resource_type: str | None = None
    resource_tags: tuple[TagPair, ...] | None = None
    exclude_tags: tuple[TagPair, ...] | None = None


@dataclass(frozen=True, slots=True)
class ListRulesRequest:
    resource_type: str
    resource_tags: tuple[TagPair, ...] | None = None
    exclude_tags: tuple[TagPair, ...] | None = None
    lock_state: str | None = None
    max_results: int | None = None
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class RulePage:
    rules: tuple[RetentionRuleRecord, ...]
    next_token: str | None


def rule_arn(rule: RetentionRuleRecord) -> str:
    return f"arn:aws:rbin:{rule.region}:{rule.owner_id}:rule/{rule.rule_id}"


def lock_state(rule: RetentionRuleRecord, now: datetime) -> str | None:
    """The rule's lock state at ``now``: None, ``locked``, ``pending_unlock`` or ``unlocked``."""
    if rule.lock_state == "unlocked" and rule.lock_end_time and rule.lock_end_time > ec2_time(now):
        return "pending_unlock"
    return rule.lock_state


def _invalid(message: str) -> KilnError:
    return KilnError(errors.ValidationException, message)


def _not_found(rule_id: str) -> KilnError:
    return KilnError(errors.RbinResourceNotFound, f"Rule {rule_id} does not exist.")


def _check_retention(resource_type: str, days: int) -> None:
    low, high = RETENTION_DAYS[resource_type]
    if not low <= days <= high:
        raise _invalid(
            f"RetentionPeriod.RetentionPeriodValue {days} is not valid for {resource_type}: "
            f"it must be between {low} and {high} days."
        )


def _check_tag_choice(resource_tags: tuple[TagPair, ...], exclude: tuple[TagPair, ...]) -> None:
    if resource_tags and exclude:
        raise _invalid(
            "ExcludeResourceTags can only be used with Region-level retention rules "
            "(rules without ResourceTags)."
        )


def _tag_text(text: str) -> bool:
    """rbin's TagKey/TagValue pattern: letters, separators, digits and ``_.:/=+-@``."""
    return all(c.isalnum() or c.isspace() or c in _TAG_CHARS for c in text)


def _check_rule_tags(tags: tuple[tuple[str, str], ...]) -> None:
    if len(tags) > MAX_TAGS:
        raise KilnError(
            errors.RbinQuotaExceeded, f"A retention rule can have at most {MAX_TAGS} tags."
        )
    for key, value in tags:
        if key.lower().startswith("aws:"):
            raise _invalid(f"Tags.Key {key!r}: keys starting with 'aws:' are reserved.")
        if not 1 <= len(key) <= 128 or not _tag_text(key):
            raise _invalid(f"Tags.Key {key[:140]!r} is not a valid tag key.")
        if len(value) > 256 or not _tag_text(value):
            raise _invalid(f"Tags.Value {value[:260]!r} is not a valid tag value.")


def _check_resource_tags(field: str, pairs: tuple[TagPair, ...]) -> None:
    for key, value in pairs:
        if not 1 <= len(key) <= 128:
            raise _invalid(f"{field}.ResourceTagKey must be 1 to 128 characters: {key[:140]!r}")
        if value is not None and len(value) > 256:
            raise _invalid(f"{field}.ResourceTagValue must be at most 256 characters.")


def _check_description(text: str | None) -> None:
    if text is not None and _DESCRIPTION.match(text) is None:
        raise _invalid("Description must be at most 255 characters with no line breaks or tabs.")


def _owned(tx: Tx, caller: Caller, rule_id: str) -> RetentionRuleRecord:
    if _IDENTIFIER.match(rule_id) is None:
        raise _invalid(f"Identifier {rule_id[:80]!r} is not a rule id (11 letters and digits).")
    rule = cat.get_rule(tx, caller.region, caller.account_id, rule_id)
    if rule is None:
        raise _not_found(rule_id)
    return rule


def _check_changeable(rule: RetentionRuleRecord, now: datetime, what: str) -> None:
    state = lock_state(rule, now)
    if state in ("locked", "pending_unlock"):
        until = f" until {rule.lock_end_time}" if state == "pending_unlock" else ""
        raise KilnError(
            errors.RbinConflict,
            f"Rule {rule.rule_id} is {state}{until}: it cannot be {what}.",
        )


def create_rule(services: Services, caller: Caller, req: CreateRuleRequest) -> RetentionRuleRecord:
    _check_retention(req.resource_type, req.retention_days)
    _check_description(req.description)
    _check_resource_tags("ResourceTags", req.resource_tags)
    _check_resource_tags("ExcludeResourceTags", req.exclude_tags)
    _check_tag_choice(req.resource_tags, req.exclude_tags)
    _check_rule_tags(req.tags)
    if req.unlock_delay_days is not None and req.resource_tags:
        raise _invalid("LockConfiguration can only be used with Region-level retention rules.")
    now = services.recycle_bin_clock()
    rule = RetentionRuleRecord(
        rule_id="".join(secrets.choice(_ID_ALPHABET) for _ in range(11)),
        region=caller.region,
        owner_id=caller.account_id,
        resource_type=req.resource_type,
        retention_days=req.retention_days,
        created=ec2_time(now),
        description=req.description,
        resource_tags=req.resource_tags,
        exclude_tags=req.exclude_tags,
        tags=req.tags,
        unlock_delay_days=req.unlock_delay_days,
        lock_state="locked" if req.unlock_delay_days is not None else None,
    )
    with services.catalog.write() as tx:
        cat.create_rule(tx, rule)
    log.info("rule %s: keep %s for %d days", rule.rule_id, rule.resource_type, rule.retention_days)
    return rule


def get_rule(services: Services, caller: Caller, identifier: str) -> RetentionRuleRecord:
    with services.catalog.read() as tx:
        return _owned(tx, caller, identifier)


def _same(wanted: tuple[TagPair, ...] | None, have: tuple[TagPair, ...]) -> bool:
    return wanted is None or set(wanted) == set(have)


def list_rules(services: Services, caller: Caller, req: ListRulesRequest) -> RulePage:
    now = services.recycle_bin_clock()
    query = (req.resource_type, req.resource_tags, req.exclude_tags, req.lock_state)
    after = decode_token(req.next_token, query)
    with services.catalog.read() as tx:
        rules = cat.list_rules(tx, caller.region, caller.account_id, req.resource_type)
    found = [
        r
        for r in rules
        if _same(req.resource_tags, r.resource_tags)
        and _same(req.exclude_tags, r.exclude_tags)
        and (req.lock_state is None or lock_state(r, now) == req.lock_state)
    ]
    start = 0
    if after is not None:
        ids = [r.rule_id for r in found]
        start = ids.index(str(after)) + 1 if after in ids else len(found)
    size = req.max_results or len(found) or 1
    page = found[start : start + size]
    more = start + size < len(found)
    return RulePage(tuple(page), encode_token(page[-1].rule_id, query) if more else None)


def update_rule(services: Services, caller: Caller, req: UpdateRuleRequest) -> RetentionRuleRecord:
    now = services.recycle_bin_clock()
    with services.catalog.write() as tx:
        rule = _owned(tx, caller, req.identifier)
        if req.resource_type is not None and req.resource_type != rule.resource_type:
            raise _invalid(
                f"ResourceType {req.resource_type}: a rule's resource type cannot be changed "
                f"(rule {rule.rule_id} retains {rule.resource_type})."
            )
        _check_changeable(rule, now, "modified")
        _check_description(req.description)
        _check_resource_tags("ResourceTags", req.resource_tags or ())
        _check_resource_tags("ExcludeResourceTags", req.exclude_tags or ())
        tags = req.resource_tags if req.resource_tags is not None else rule.resource_tags
        exclude = req.exclude_tags if req.exclude_tags is not None else rule.exclude_tags
        _check_tag_choice(tags, exclude)
        if req.retention_days is not None:
            _check_retention(rule.resource_type, req.retention_days)
        updated = replace(
            rule,
            retention_days=req.retention_days or rule.retention_days,
            description=req.description if req.description is not None else rule.description,
            resource_tags=tags,
            exclude_tags=exclude,
        )
        cat.save_rule(tx, updated)
    return updated


def delete_rule(services: Services, caller: Caller, identifier: str) -> None:
    now = services.recycle_bin_clock()
    with services.catalog.write() as tx:
        rule = _owned(tx, caller, identifier)
        _check_changeable(rule, now, "deleted")
        cat.delete_rule(tx, rule.rule_id)
    log.info("rule %s deleted", identifier)


def lock_rule(
    services: Services, caller: Caller, identifier: str, unlock_delay_days: int
) -> RetentionRuleRecord:
    now = services.recycle_bin_clock()
    with services.catalog.write() as tx:
        rule = _owned(tx, caller, identifier)
        if rule.resource_tags:
            raise _invalid(
                f"Rule {rule.rule_id} is a tag-level rule: only Region-level retention rules "
                "can be locked."
            )
        if lock_state(rule, now) == "locked":
            raise KilnError(errors.RbinConflict, f"Rule {rule.rule_id} is already locked.")
        locked = replace(
            rule, lock_state="locked", unlock_delay_days=unlock_delay_days, lock_end_time=None
        )
        cat.save_rule(tx, locked)
    return locked


def unlock_rule(services: Services, caller: Caller, identifier: str) -> RetentionRuleRecord:
    now = services.recycle_bin_clock()
    with services.catalog.write() as tx:
        rule = _owned(tx, caller, identifier)
        if lock_state(rule, now) != "locked" or rule.unlock_delay_days is None:
            raise KilnError(errors.RbinConflict, f"Rule {rule.rule_id} is not locked.")
        end = now + timedelta(days=rule.unlock_delay_days)
        unlocked = replace(rule, lock_state="unlocked", lock_end_time=ec2_time(end))
        cat.save_rule(tx, unlocked)
    return unlocked


def _rule_of_arn(tx: Tx, caller: Caller, arn: str) -> RetentionRuleRecord:
    m = _ARN.match(arn)
    if m is None:
        raise _invalid(f"ResourceArn {arn!r} is not the ARN of a retention rule.")
    region, account, rule_id = m.groups()
    if (region, account) != (caller.region, caller.account_id):
        raise _not_found(rule_id)
    return _owned(tx, caller, rule_id)


def tag_resource(
    services: Services, caller: Caller, resource_arn: str, tags: tuple[tuple[str, str], ...]
) -> None:
    with services.catalog.write() as tx:
        rule = _rule_of_arn(tx, caller, resource_arn)
        merged = dict(rule.tags)
        merged.update(dict(tags))
        _check_rule_tags(tuple(merged.items()))
        cat.save_rule(tx, replace(rule, tags=tuple(merged.items())))


def untag_resource(
    services: Services, caller: Caller, resource_arn: str, tag_keys: tuple[str, ...]
) -> None:
    with services.catalog.write() as tx:
        rule = _rule_of_arn(tx, caller, resource_arn)
        kept = tuple((k, v) for k, v in rule.tags if k not in set(tag_keys))
        cat.save_rule(tx, replace(rule, tags=kept))


def list_tags_for_resource(
    services: Services, caller: Caller, resource_arn: str
) -> tuple[tuple[str, str], ...]:
    with services.catalog.read() as tx:
        return _rule_of_arn(tx, caller, resource_arn).tags
