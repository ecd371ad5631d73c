"""SSM handlers: params -> the rules in kiln/services/parameters -> the output shape's dict."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.catalog.records import ParameterRecord
from kiln.services.context import Caller, Services
from kiln.services.parameters import describe_parameters as listing
from kiln.services.parameters import parameters as rules
from kiln.services.parameters.names import parameter_arn


def _services(ctx: RequestContext) -> Services:
    if not isinstance(ctx.state, Services):
        raise TypeError("the SSM app was built without kiln.services.context.Services")
    return ctx.state


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


def _strs(params: Params, key: str) -> tuple[str, ...]:
    value = params.get(key)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _filters(params: Params, key: str) -> tuple[listing.ParameterFilter, ...]:
    value = params.get(key)
    items = value if isinstance(value, list) else []
    return tuple(
        listing.ParameterFilter(
            str(f.get("Key", "")),
            str(f["Option"]) if f.get("Option") is not None else None,
            tuple(str(v) for v in f.get("Values") or ()),
        )
        for f in items
        if isinstance(f, Mapping)
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _arn(rec: ParameterRecord) -> str:
    return parameter_arn(rec.region, rec.account_id, rec.name)


def parameter(rec: ParameterRecord, selector: str | None = None) -> dict[str, object]:
    """A parameter as SSM's ``Parameter``."""
    return {
        "Name": rec.name,
        "Type": rec.type,
        "Value": rec.value,
        "Version": rec.version,
        "Selector": selector,
        "LastModifiedDate": _time(rec.modified),
        "ARN": _arn(rec),
        "DataType": rec.data_type,
    }


def metadata(rec: ParameterRecord) -> dict[str, object]:
    """A parameter as SSM's ``ParameterMetadata``."""
    return {
        "Name": rec.name,
        "ARN": _arn(rec),
        "Type": rec.type,
        "KeyId": rec.key_id,
        "LastModifiedDate": _time(rec.modified),
        "LastModifiedUser": rec.modified_user,
        "Description": rec.description,
        "AllowedPattern": rec.allowed_pattern,
        "Version": rec.version,
        "Tier": rec.tier,
        "Policies": [],
        "DataType": rec.data_type,
    }


def put_parameter(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    tags = params.get("Tags")
    req = rules.PutParameterRequest(
        name=_str(params, "Name"),
        value=_str(params, "Value"),
        type=_opt_str(params, "Type"),
        description=_opt_str(params, "Description"),
        key_id=_opt_str(params, "KeyId"),
        overwrite=params.get("Overwrite") is True,
        allowed_pattern=_opt_str(params, "AllowedPattern"),
        tier=_opt_str(params, "Tier"),
        data_type=_opt_str(params, "DataType"),
        policies=_opt_str(params, "Policies"),
        tags=tuple(
            (str(t.get("Key", "")), str(t.get("Value", "")))
            for t in (tags if isinstance(tags, list) else [])
            if isinstance(t, Mapping)
        ),
    )
    res = rules.put_parameter(_services(ctx), _caller(ctx), req)
    return {"Version": res.version, "Tier": res.tier}


def get_parameter(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = rules.get_parameter(
        _services(ctx), _caller(ctx), _str(params, "Name"), params.get("WithDecryption") is True
    )
    return {"Parameter": parameter(found.parameter, found.selector)}


def get_parameters(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.get_parameters(
        _services(ctx), _caller(ctx), _strs(params, "Names"), params.get("WithDecryption") is True
    )
    return {
        "Parameters": [parameter(f.parameter, f.selector) for f in res.parameters],
        "InvalidParameters": list(res.invalid),
    }


def get_parameters_by_path(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = listing.get_parameters_by_path(
        _services(ctx),
        _caller(ctx),
        _str(params, "Path"),
        recursive=params.get("Recursive") is True,
        filters=_filters(params, "ParameterFilters"),
        with_decryption=params.get("WithDecryption") is True,
        max_results=_opt_int(params, "MaxResults"),
        next_token=_opt_str(params, "NextToken"),
    )
    return {"Parameters": [parameter(r) for r in page.items], "NextToken": page.next_token}


def describe_parameters(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = listing.describe_parameters(
        _services(ctx),
        _caller(ctx),
        filters=_filters(params, "Filters"),
        parameter_filters=_filters(params, "ParameterFilters"),
        max_results=_opt_int(params, "MaxResults"),
        next_token=_opt_str(params, "NextToken"),
    )
    return {"Parameters": [metadata(r) for r in page.items], "NextToken": page.next_token}


def delete_parameter(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_parameter(_services(ctx), _caller(ctx), _str(params, "Name"))
    return {}


def delete_parameters(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = rules.delete_parameters(_services(ctx), _caller(ctx), _strs(params, "Names"))
    return {"DeletedParameters": list(res.deleted), "InvalidParameters": list(res.invalid)}


def get_parameter_history(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.get_parameter_history(
        _services(ctx),
        _caller(ctx),
        _str(params, "Name"),
        with_decryption=params.get("WithDecryption") is True,
        max_results=_opt_int(params, "MaxResults"),
        next_token=_opt_str(params, "NextToken"),
    )
    return {
        "Parameters": [
            {
                **{k: v for k, v in metadata(r).items() if k != "ARN"},
                "Value": r.value,
                "Labels": [],
            }
            for r in page.items
        ],
        "NextToken": page.next_token,
    }
