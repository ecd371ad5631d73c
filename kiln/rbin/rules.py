"""Recycle Bin handlers: params -> the rules in kiln/services/recyclebin -> the output shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.catalog.records import RetentionRuleRecord
from kiln.services.context import Caller, Services
from kiln.services.recyclebin import rules
from kiln.services.recyclebin.rules import TagPair


def _services(ctx: RequestContext) -> Services:
    if not isinstance(ctx.state, Services):
        raise TypeError("the rbin app was built without kiln.services.context.Services")
    return ctx.state


def _caller(ctx: RequestContext) -> Caller:
    return Caller(ctx.account_id, ctx.region)


def _dicts(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _resource_tags(params: Params, key: str) -> tuple[TagPair, ...] | None:
    if key not in params or params[key] is None:
        return None
    return tuple(
        (
            str(t.get("ResourceTagKey", "")),
            None if t.get("ResourceTagValue") is None else str(t["ResourceTagValue"]),
        )
        for t in _dicts(params[key])
    )


def _tags(params: Params) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(t.get("Key", "")), str(t.get("Value", ""))) for t in _dicts(params.get("Tags"))
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _nested_int(params: Params, outer: str, *path: str) -> int | None:
    value: object = params.get(outer)
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return _int(value)


def _opt_str(params: Params, key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) else None


def _pairs(pairs: tuple[TagPair, ...]) -> list[dict[str, object]]:
    return [
        {"ResourceTagKey": k, **({"ResourceTagValue": v} if v is not None else {})}
        for k, v in pairs
    ]


def rule_out(
    rule: RetentionRuleRecord, now: datetime, *, summary: bool = False
) -> dict[str, object]:
    """A rule as rbin's CreateRule/GetRule/... response (``summary``: a RuleSummary)."""
    state = rules.lock_state(rule, now)
    out: dict[str, object] = {
        "Identifier": rule.rule_id,
        "Description": rule.description,
        "RetentionPeriod": {
            "RetentionPeriodValue": rule.retention_days,
            "RetentionPeriodUnit": "DAYS",
        },
        "LockState": state,
        "RuleArn": rules.rule_arn(rule),
    }
    if summary:
        return out
    out |= {
        "ResourceType": rule.resource_type,
        "ResourceTags": _pairs(rule.resource_tags),
        "ExcludeResourceTags": _pairs(rule.exclude_tags) if not rule.resource_tags else None,
        "Status": "available",
        "LockConfiguration": (
            {"UnlockDelay": {"UnlockDelayValue": rule.unlock_delay_days, "UnlockDelayUnit": "DAYS"}}
            if rule.unlock_delay_days is not None and state is not None
            else None
        ),
        "LockEndTime": (
            datetime.fromisoformat(rule.lock_end_time)
            if state == "pending_unlock" and rule.lock_end_time
            else None
        ),
    }
    return out


def _now(ctx: RequestContext) -> datetime:
    return _services(ctx).recycle_bin_clock()


def create_rule(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rule = rules.create_rule(
        _services(ctx),
        _caller(ctx),
        rules.CreateRuleRequest(
            resource_type=str(params["ResourceType"]),
            retention_days=_nested_int(params, "RetentionPeriod", "RetentionPeriodValue") or 0,
            description=_opt_str(params, "Description"),
            resource_tags=_resource_tags(params, "ResourceTags") or (),
            exclude_tags=_resource_tags(params, "ExcludeResourceTags") or (),
            tags=_tags(params),
            unlock_delay_days=_nested_int(
                params, "LockConfiguration", "UnlockDelay", "UnlockDelayValue"
            ),
        ),
    )
    out = rule_out(rule, _now(ctx))
    out.pop("LockEndTime")
    return {**out, "Tags": [{"Key": k, "Value": v} for k, v in rule.tags] or None}


def get_rule(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return rule_out(
        rules.get_rule(_services(ctx), _caller(ctx), str(params["Identifier"])), _now(ctx)
    )


def list_rules(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.list_rules(
        _services(ctx),
        _caller(ctx),
        rules.ListRulesRequest(
            resource_type=str(params["ResourceType"]),
            resource_tags=_resource_tags(params, "ResourceTags"),
            exclude_tags=_resource_tags(params, "ExcludeResourceTags"),
            lock_state=_opt_str(params, "LockState"),
            max_results=_int(params.get("MaxResults")),
            next_token=_opt_str(params, "NextToken"),
        ),
    )
    now = _now(ctx)
    return {
        "Rules": [rule_out(r, now, summary=True) for r in page.rules],
        "NextToken": page.next_token,
    }


def update_rule(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rule = rules.update_rule(
        _services(ctx),
        _caller(ctx),
        rules.UpdateRuleRequest(
            identifier=str(params["Identifier"]),
            retention_days=_nested_int(params, "RetentionPeriod", "RetentionPeriodValue"),
            description=_opt_str(params, "Description"),
            resource_type=_opt_str(params, "ResourceType"),
            resource_tags=_resource_tags(params, "ResourceTags"),
            exclude_tags=_resource_tags(params, "ExcludeResourceTags"),
        ),
    )
    out = rule_out(rule, _now(ctx))
    out.pop("LockConfiguration")
    return out


def delete_rule(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_rule(_services(ctx), _caller(ctx), str(params["Identifier"]))
    return {}


def lock_rule(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rule = rules.lock_rule(
        _services(ctx),
        _caller(ctx),
        str(params["Identifier"]),
        _nested_int(params, "LockConfiguration", "UnlockDelay", "UnlockDelayValue") or 0,
    )
    out = rule_out(rule, _now(ctx))
    out.pop("LockEndTime")
    return out


def unlock_rule(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return rule_out(
        rules.unlock_rule(_services(ctx), _caller(ctx), str(params["Identifier"])), _now(ctx)
    )


def tag_resource(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.tag_resource(_services(ctx), _caller(ctx), str(params["ResourceArn"]), _tags(params))
    return {}


def untag_resource(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    keys = params.get("TagKeys")
    rules.untag_resource(
        _services(ctx),
        _caller(ctx),
        str(params["ResourceArn"]),
        tuple(str(k) for k in keys) if isinstance(keys, list) else (),
    )
    return {}


def list_tags_for_resource(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    tags = rules.list_tags_for_resource(_services(ctx), _caller(ctx), str(params["ResourceArn"]))
    return {"Tags": [{"Key": k, "Value": v} for k, v in tags]}
