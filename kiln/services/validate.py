"""Checks shared by the rules: ids, filters, tags, pagination tokens, DryRun."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence

from kiln import errors
from kiln.catalog.records import Filter
from kiln.errors import KilnError

DRY_RUN_MESSAGE = "Request would have succeeded, but DryRun flag is set."
UNAUTHORIZED_MESSAGE = "You are not authorized to perform this operation."
ACCOUNT_RE = re.compile(r"^\d{12}$")
_ID_RE = re.compile(r"^(?P<prefix>[a-z]+(?:-[a-z]+)*)-(?P<hex>[0-9a-f]{8}|[0-9a-f]{17})$")
MAX_TAGS = 50


def dry_run(flag: bool, allowed: bool = True) -> None:
    """Call after the permission checks a real call makes, before any change."""
    if not flag:
        return
    if allowed:
        raise KilnError(errors.DryRunOperation, DRY_RUN_MESSAGE)
    raise KilnError(errors.UnauthorizedOperation, UNAUTHORIZED_MESSAGE)


def id_prefix(value: str) -> str | None:
    m = _ID_RE.match(value)
    return m.group("prefix") if m else None


def check_image_id(value: str) -> str:
    if id_prefix(value) not in ("ami", "aki", "ari"):
        raise KilnError(
            errors.InvalidAMIIDMalformed, f'Invalid id: "{value}" (expecting "ami-...")'
        )
    return value


def check_account_id(value: str, code: errors.ErrorCode = errors.InvalidUserIDMalformed) -> str:
    if not ACCOUNT_RE.match(value):
        raise KilnError(code, f'Invalid user id: "{value}"')
    return value


def check_filters(
    filters: Sequence[Filter], kinds: Mapping[str, str], tag_filters: bool = True
) -> tuple[Filter, ...]:
    """Unknown names -> InvalidFilter; empty or mistyped values -> InvalidParameterValue."""
    for f in filters:
        kind = (
            "str"
            if tag_filters and f.name.startswith("tag:") and len(f.name) > 4
            else kinds.get(f.name)
        )
        if kind is None:
            raise KilnError(errors.InvalidFilter, f"The filter '{f.name}' is invalid")
        if not f.values:
            raise KilnError(
                errors.InvalidParameterValue, f"The filter '{f.name}' must have at least one value"
            )
        for v in f.values:
            if kind == "bool" and v.lower() not in ("true", "false"):
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"The filter value '{v}' for '{f.name}' must be true or false",
                )
            if kind == "int" and not v.isdigit():
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"The filter value '{v}' for '{f.name}' must be an integer",
                )
    return tuple(filters)


def check_max_results(value: int | None, low: int = 5, high: int = 1000) -> int | None:
    if value is not None and not low <= value <= high:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ( {value} ) for parameter maxResults is invalid. "
            f"Expecting a value between {low} and {high}.",
        )
    return value


def _fingerprint(parts: Iterable[object]) -> str:
    return hashlib.sha256(json.dumps(list(parts), default=str).encode()).hexdigest()[:16]


def encode_token(after: object, query: Iterable[object]) -> str:
    raw = json.dumps({"a": after, "q": _fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: Iterable[object]) -> object:
    """The position stored in ``token``; InvalidPaginationToken if it is not one of ours or
    belongs to a different query."""
    if token is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] != _fingerprint(query):
            raise ValueError("token of another query")
        return data["a"]
    except (ValueError, KeyError, TypeError) as e:
        raise KilnError(errors.InvalidPaginationToken, f"Invalid pagination token: {token}") from e


def check_tags(tags: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    if len(tags) > MAX_TAGS:
        raise KilnError(
            errors.TagLimitExceeded, f"The maximum number of tags per resource is {MAX_TAGS}."
        )
    for key, value in tags:
        if not 1 <= len(key) <= 128:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Tag key must be between 1 and 128 characters: '{key[:140]}'",
            )
        if key.lower().startswith("aws:"):
            raise KilnError(
                errors.InvalidParameterValue,
                "Tag keys starting with 'aws:' are reserved for internal use",
            )
        if len(value) > 256:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Tag value for key '{key}' is longer than 256 characters",
            )
    keys = [k for k, _ in tags]
    if len(set(keys)) != len(keys):
        raise KilnError(errors.InvalidParameterValue, "Duplicate tag key in the request")
    return tuple(tags)
