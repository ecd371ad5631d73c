"""A YAML (or JSON) document read with its line numbers: PyYAML's composed nodes, and the
checks every Kiln document shares (a mapping's known keys, a field's type), each refusal naming
the file, the line and the field (docs/builds.md#errors)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from kiln import errors
from kiln.errors import KilnError

Plain = str | int | float | bool | None | list["Plain"] | dict[str, "Plain"]


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a document: ``file:line: field``."""

    file: str
    line: int  # 1-based
    field: str

    def at(self, node: yaml.Node, field: str) -> Where:
        return Where(self.file, node.start_mark.line + 1, field)

    def fail(self, message: str) -> KilnError:
        return KilnError(
            errors.InvalidParameterValue, f"{self.file}:{self.line}: {self.field}: {message}"
        )


def compose(text: str, file: str) -> tuple[yaml.Node, Where]:
    """The document's root node; a syntax error or an empty document names its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e)
        raise Where(file, line, "(document)").fail(f"not valid YAML: {problem}") from None
    if node is None:
        raise Where(file, 1, "(document)").fail("the document is empty")
    return node, Where(file, node.start_mark.line + 1, "(document)")


def plain(node: yaml.Node, where: Where) -> Plain:
    """The node as plain data (strings, numbers, lists, mappings with string keys)."""
    if isinstance(node, yaml.ScalarNode):
        try:
            value = yaml.SafeLoader("").construct_object(node, deep=True)
        except yaml.YAMLError as e:  # a tag PyYAML's safe loader does not know (!!python/…)
            raise where.fail(f"not a plain value: {getattr(e, 'problem', e)}") from None
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        return str(node.value)  # dates and the like: as written
    if isinstance(node, yaml.SequenceNode):
        return [
            plain(item, where.at(item, f"{where.field}[{i}]")) for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        return {
            k: plain(v, where.at(v, f"{where.field}.{k}")) for k, v in mapping(node, where).items()
        }
    raise where.fail("unsupported YAML node")


def mapping(
    node: yaml.Node,
    where: Where,
    known: frozenset[str] | None = None,
    required: tuple[str, ...] = (),
) -> dict[str, yaml.Node]:
    """A mapping's values by key: keys are strings, none repeated, none unknown (when
    ``known`` is given) and every ``required`` one present."""
    if not isinstance(node, yaml.MappingNode):
        raise where.fail("must be a mapping")
    out: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise where.at(key, where.field).fail("a key must be a string")
        name = str(key.value)
        field = f"{where.field}.{name}" if where.field != "(document)" else name
        if name in out:
            raise where.at(key, field).fail("repeated key")
        if known is not None and name not in known:
            raise where.at(key, field).fail(f"unknown key (known: {', '.join(sorted(known))})")
        out[name] = value
    for name in required:
        if name not in out:
            raise where.fail(f"missing required key '{name}'")
    return out


def field(where: Where, node: yaml.Node, name: str) -> Where:
    prefix = "" if where.field == "(document)" else f"{where.field}."
    return where.at(node, f"{prefix}{name}")


def sequence(node: yaml.Node, where: Where) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise where.fail("must be a list")
    return list(node.value)


def text(node: yaml.Node, where: Where) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        raise where.fail("must be a string")
    return str(node.value)


def integer(node: yaml.Node, where: Where, lo: int, hi: int) -> int:
    value = plain(node, where)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise where.fail(f"must be an integer from {lo} to {hi}")
    return value
