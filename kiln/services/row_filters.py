"""EC2 filters applied to records in Python, for resource families small enough to list
(key pairs and instances of one account in one region).

A filter matches if any of its values matches any of the record's values for that name (EC2
wildcards ``*`` and ``?``); a record passes if every filter matches. ``tag:KEY`` and ``tag-key``
/ ``tag-value`` are handled here for every family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from kiln import errors
from kiln.catalog.records import Filter, TagRecord
from kiln.catalog.wildcard import matches_text
from kiln.errors import KilnError

T = TypeVar("T")


def check_names(filters: Sequence[Filter], known: Iterable[str]) -> None:
    names = set(known)
    for f in filters:
        if not (
            f.name in names
            or f.name in ("tag-key", "tag-value")
            or (f.name.startswith("tag:") and len(f.name) > 4)
        ):
            raise KilnError(errors.InvalidFilter, f"The filter '{f.name}' is invalid")
        if not f.values:
            raise KilnError(
                errors.InvalidParameterValue, f"The filter '{f.name}' must have at least one value"
            )


def _tag_values(tags: Sequence[TagRecord], name: str) -> list[str]:
    if name == "tag-key":
        return [t.key for t in tags]
    if name == "tag-value":
        return [t.value for t in tags]
    return [t.value for t in tags if t.key == name[4:]]


def matches(
    record: T,
    tags: Sequence[TagRecord],
    filters: Sequence[Filter],
    getters: Mapping[str, Callable[[T], Iterable[str | None]]],
) -> bool:
    for f in filters:
        if f.name.startswith("tag"):
            have = _tag_values(tags, f.name)
        else:
            have = [v for v in getters[f.name](record) if v is not None]
        if not any(matches_text(h, pattern) for h in have for pattern in f.values):
            return False
    return True
