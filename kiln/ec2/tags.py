"""Tag handlers (CreateTags, DeleteTags, DescribeTags) and the param/record translations that
every resource family's handlers share: filters, tags, TagSpecifications, the services lookup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized

from kiln.aws.context import RequestContext
from kiln.catalog.records import Filter, TagRecord
from kiln.services.context import Caller, Services
from kiln.services.tags import tags as rules
from kiln.services.tags.tags import TagSpec

Params = dict[str, object]


def services_of(ctx: RequestContext) -> Services:
    state = ctx.state
    if not isinstance(state, Services):
        raise TypeError("the EC2 app was built without kiln.services.context.Services")
    return state


def caller_of(ctx: RequestContext) -> Caller:
    return Caller(ctx.account_id, ctx.region)


def dicts(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def strs(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def opt_str(params: Mapping[str, object], key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) else None


def opt_int(params: Mapping[str, object], key: str) -> int | None:
    value = params.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_bool(params: Mapping[str, object], key: str) -> bool | None:
    value = params.get(key)
    return value if isinstance(value, bool) else None


def flag(params: Mapping[str, object], key: str) -> bool:
    return params.get(key) is True


def filters(params: Mapping[str, object]) -> tuple[Filter, ...]:
    return tuple(
        Filter(str(f.get("Name", "")), strs(f.get("Values"))) for f in dicts(params.get("Filters"))
    )


def tag_pairs(value: object) -> tuple[tuple[str, str], ...]:
    return tuple((str(t.get("Key", "")), str(t.get("Value", ""))) for t in dicts(value))


def tag_specs(params: Mapping[str, object]) -> tuple[TagSpec, ...]:
    return tuple(
        TagSpec(str(s.get("ResourceType", "")), tag_pairs(s.get("Tags")))
        for s in dicts(params.get("TagSpecifications"))
    )


def tags_out(tags: Sequence[TagRecord]) -> list[dict[str, object]] | None:
    return [{"Key": t.key, "Value": t.value} for t in tags] or None


def create_tags(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.create_tags(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("Resources")),
        tag_pairs(params.get("Tags")),
        flag(params, "DryRun"),
    )
    return {}


def _opt_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def delete_tags(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    raw = params.get("Tags")
    tags = (
        None
        if raw is None
        else tuple((str(t.get("Key", "")), _opt_text(t.get("Value"))) for t in dicts(raw))
    )
    rules.delete_tags(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("Resources")),
        tags,
        flag(params, "DryRun"),
    )
    return {}


def describe_tags(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.describe_tags(
        services_of(ctx),
        caller_of(ctx),
        filters(params),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )
    return {
        "Tags": [
            {
                "Key": t.key,
                "Value": t.value,
                "ResourceId": t.resource_id,
                "ResourceType": t.resource_type,
            }
            for t in res.tags
        ],
        "NextToken": res.next_token,
    }


def implied_operation(add: Sized, remove: Sized) -> str | None:
    """The operation the older lists (UserIds, UserGroups) join when OperationType is absent.

    Packer sends ``LaunchPermission.Add`` and the same accounts again as ``UserIds`` without an
    OperationType; EC2 accepts that, the lists naming the permissions ``Add`` or ``Remove`` names.
    """
    if add and not remove:
        return "add"
    if remove and not add:
        return "remove"
    return None
