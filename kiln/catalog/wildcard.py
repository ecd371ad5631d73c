"""EC2 filter values as SQL conditions: ``*`` any run, ``?`` one character, ``\\`` escapes.

Matching is case-sensitive on both dialects: SQLite uses GLOB (which also uses an index for a
literal prefix), PostgreSQL uses LIKE with ``text_pattern_ops`` indexes. A value without
wildcards becomes a plain equality so it can use any index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement as _CE


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed value: literal text and a list of tokens ('lit', ch) / ('any',) / ('one',)."""

    tokens: tuple[tuple[str, str], ...]

    @property
    def is_literal(self) -> bool:
        return all(kind == "lit" for kind, _ in self.tokens)

    @property
    def literal(self) -> str:
        return "".join(ch for _, ch in self.tokens)


def parse(value: str) -> Pattern:
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            tokens.append(("lit", value[i + 1]))
            i += 2
            continue
        tokens.append(("any", "") if ch == "*" else ("one", "") if ch == "?" else ("lit", ch))
        i += 1
    return Pattern(tuple(tokens))


def _glob(p: Pattern) -> str:
    out = []
    for kind, ch in p.tokens:
        if kind == "any":
            out.append("*")
        elif kind == "one":
            out.append("?")
        else:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
    return "".join(out)


def _like(p: Pattern) -> str:
    out = []
    for kind, ch in p.tokens:
        if kind == "any":
            out.append("%")
        elif kind == "one":
            out.append("_")
        else:
            out.append("\\" + ch if ch in "%_\\" else ch)
    return "".join(out)


Column = _CE[str] | _CE[str | None] | InstrumentedAttribute[str] | InstrumentedAttribute[str | None]


def match(column: Column, value: str, dialect: str) -> ColumnElement[bool]:
    p = parse(value)
    if p.is_literal:
        return column == p.literal
    if dialect == "sqlite":
        return column.op("GLOB", is_comparison=True)(_glob(p))
    return column.like(_like(p), escape="\\")


def table(model: type[object]) -> Table:
    """The Core table of an ORM model, typed for ``insert`` (mypy sees ``FromClause``)."""
    t = getattr(model, "__table__")  # noqa: B009  (declarative attribute, typed loosely)
    assert isinstance(t, Table)
    return t


def match_any(column: Column, values: tuple[str, ...], dialect: str) -> ColumnElement[bool]:
    literals = [parse(v) for v in values]
    exact = [p.literal for p in literals if p.is_literal]
    conds: list[ColumnElement[bool]] = [
        match(column, v, dialect) for v, p in zip(values, literals, strict=True) if not p.is_literal
    ]
    if exact:
        conds.append(column.in_(exact))
    return or_(*conds) if len(conds) != 1 else conds[0]


def matches_text(value: str, pattern: str) -> bool:
    """The same semantics in Python (for values that do not live in a column)."""
    import re

    parts = []
    for kind, ch in parse(pattern).tokens:
        parts.append(".*" if kind == "any" else "." if kind == "one" else re.escape(ch))
    return re.fullmatch("".join(parts), value, flags=re.DOTALL) is not None
