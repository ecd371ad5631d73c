"""EC2 wildcard semantics, checked against the database on both dialects."""

from __future__ import annotations

import pytest
from sqlalchemy import literal, select

from kiln.catalog.wildcard import match, matches_text

CASES = [
    ("web-*", "web-2024", True),
    ("web-*", "Web-2024", False),
    ("web-?", "web-1", True),
    ("web-?", "web-12", False),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("50%", "50%", True),
    ("5_%*", "5_%x", True),
    ("5_*", "5ax", False),
    ("[x]*", "[x]y", True),
    ("*", "", True),
    ("exact", "exact", True),
    ("exact", "exactly", False),
]


@pytest.mark.parametrize(("pattern", "value", "expected"), CASES)
def test_wildcards_in_sql(catalog, pattern: str, value: str, expected: bool) -> None:  # type: ignore[no-untyped-def]
    with catalog.read() as tx:
        got = tx.scalar(select(match(literal(value), pattern, catalog.dialect)))
    assert bool(got) is expected
    assert matches_text(value, pattern) is expected
