"""GetParametersByPath and DescribeParameters: the account's parameters (and, by path, the
public ones under /kiln/ and /aws/), filtered, by name, in pages (docs/ssm.md#listing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import parameters as cat
from kiln.catalog.records import ParameterRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.parameters.names import check_path, under_path
from kiln.services.parameters.parameters import TYPES, decode_ssm_token, shown
from kiln.services.parameters.public import is_public_name, public_parameters
from kiln.services.validate import encode_token

BY_PATH_PAGE = 10
DESCRIBE_PAGE = 50
#: key -> (options, default option); GetParametersByPath refuses Name and Path.
FILTER_OPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "Name": (("Equals", "BeginsWith", "Contains"), "Equals"),
    "Path": (("Recursive", "OneLevel"), "OneLevel"),
    "Type": (("Equals",), "Equals"),
    "KeyId": (("Equals",), "Equals"),
    "Tier": (("Equals",), "Equals"),
    "DataType": (("Equals",), "Equals"),
}
BY_PATH_KEYS = ("Type", "KeyId", "Tier", "DataType")
#: DescribeParameters' older ``Filters`` (Name, Type, KeyId): the Name is a prefix.
LEGACY_OPTIONS = {"Name": "BeginsWith", "Type": "Equals", "KeyId": "Equals"}


@dataclass(frozen=True, slots=True)
class ParameterFilter:
    key: str
    option: str | None
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParameterPage:
    items: tuple[ParameterRecord, ...]
    next_token: str | None


Match = Callable[[ParameterRecord], bool]


def _field(rec: ParameterRecord, key: str) -> str:
    return {
        "Name": rec.name,
        "Type": rec.type,
        "KeyId": rec.key_id or "",
        "Tier": rec.tier,
        "DataType": rec.data_type,
    }[key]


def _compile(f: ParameterFilter, allowed: tuple[str, ...]) -> Match:
    if f.key.startswith("tag:") or f.key == "Label" or f.key not in allowed:
        raise KilnError(
            errors.InvalidFilterKey,
            f"The following filter key is not valid: {f.key}. Valid filter keys include: "
            f"[{', '.join(allowed)}].",
        )
    options, default = FILTER_OPTIONS[f.key]
    option = f.option or default
    if option not in options:
        raise KilnError(
            errors.InvalidFilterOption,
            f"The following filter option is not valid: {option}. Valid options include: "
            f"[{', '.join(options)}].",
        )
    if not f.values and f.key != "Path":
        raise KilnError(errors.InvalidFilterValue, f"The filter {f.key} needs values.")
    if f.key == "Type" and any(v not in TYPES for v in f.values):
        raise KilnError(
            errors.InvalidFilterValue,
            f"The following filter value is not valid: {', '.join(f.values)}. Valid values "
            f"include: [{', '.join(TYPES)}].",
        )
    if f.key == "Path":
        paths = [_path_value(v) for v in f.values or ("/",)]
        recursive = option == "Recursive"
        return lambda r: any(under_path(r.name, p, recursive) or r.name == p for p in paths)
    values = f.values
    key = f.key
    if option == "BeginsWith":
        return lambda r: any(_field(r, key).startswith(v) for v in values)
    if option == "Contains":
        return lambda r: any(v in _field(r, key) for v in values)
    return lambda r: _field(r, key) in values


def _path_value(value: str) -> str:
    try:
        return check_path(value)
    except KilnError:
        raise KilnError(
            errors.InvalidFilterValue, f"The following filter value is not valid: {value}"
        ) from None


def _page(
    recs: list[ParameterRecord],
    matches: list[Match],
    size: int,
    after: object,
    fingerprint: list[object],
    with_decryption: bool,
) -> ParameterPage:
    chosen = [r for r in recs if all(m(r) for m in matches)]
    if after is not None:
        chosen = [r for r in chosen if r.name > str(after)]
    page = chosen[:size]
    token = encode_token(page[-1].name, fingerprint) if len(chosen) > size else None
    return ParameterPage(tuple(shown(r, with_decryption) for r in page), token)


def get_parameters_by_path(
    services: Services,
    caller: Caller,
    path: str,
    recursive: bool = False,
    filters: tuple[ParameterFilter, ...] = (),
    with_decryption: bool = False,
    max_results: int | None = None,
    next_token: str | None = None,
) -> ParameterPage:
    """The parameters below ``path`` (one level unless ``recursive``), by name. Under /aws/
    or /kiln/: the public parameters."""
    prefix = check_path(path)
    matches = [_compile(f, BY_PATH_KEYS) for f in filters]
    fingerprint: list[object] = [
        "GetParametersByPath",
        caller.account_id,
        caller.region,
        prefix,
        recursive,
        [(f.key, f.option, f.values) for f in filters],
    ]
    after = decode_ssm_token(next_token, fingerprint)
    with services.catalog.read() as tx:
        if is_public_name(prefix):
            recs = public_parameters(tx, caller)
        else:
            recs = cat.current_parameters(
                tx, services.catalog.sealer, caller.account_id, caller.region, prefix=prefix
            )
    recs = [r for r in recs if under_path(r.name, prefix, recursive)]
    return _page(recs, matches, max_results or BY_PATH_PAGE, after, fingerprint, with_decryption)


def describe_parameters(
    services: Services,
    caller: Caller,
    filters: tuple[ParameterFilter, ...] = (),
    parameter_filters: tuple[ParameterFilter, ...] = (),
    max_results: int | None = None,
    next_token: str | None = None,
) -> ParameterPage:
    """The account's parameters' metadata, by name (public parameters are not listed)."""
    if filters and parameter_filters:
        raise KilnError(
            errors.ValidationException,
            "You can use either Filters or ParameterFilters in a single request.",
        )
    legacy = [ParameterFilter(f.key, LEGACY_OPTIONS.get(f.key), f.values) for f in filters]
    matches = [_compile(f, tuple(FILTER_OPTIONS)) for f in legacy + list(parameter_filters)]
    fingerprint: list[object] = [
        "DescribeParameters",
        caller.account_id,
        caller.region,
        [(f.key, f.option, f.values) for f in legacy + list(parameter_filters)],
    ]
    after = decode_ssm_token(next_token, fingerprint)
    with services.catalog.read() as tx:
        recs = cat.current_parameters(tx, services.catalog.sealer, caller.account_id, caller.region)
    return _page(recs, matches, max_results or DESCRIBE_PAGE, after, fingerprint, False)
