"""Image Builder component documents (AWS's format, schemaVersion 1.0): parsed, checked and
bound to their parameters. What each step does in the guest is kiln/builder/actions.py; the
order and the run are kiln/services/builds/. docs/builds.md#components is the contract."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kiln.builder import actions
from kiln.builder.yamlnodes import (
    Plain,
    Where,
    compose,
    field,
    integer,
    mapping,
    plain,
    sequence,
    text,
)

PHASES = ("build", "validate", "test")
ON_FAILURE = ("Abort", "Continue", "Ignore")
TOP_KEYS = frozenset({"name", "description", "schemaVersion", "parameters", "phases"})
STEP_KEYS = frozenset(
    {"name", "action", "inputs", "onFailure", "timeoutSeconds", "maxAttempts", "if", "loop"}
)
LOOP_KEYS = frozenset({"name", "forEach", "for"})
PARAM_KEYS = frozenset({"type", "default", "description"})
STEP_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
#: ``{{ name }}``: a parameter, ``{{ phase.step.outputs.stdout }}``, ``{{ loop.value }}``.
VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
DEFAULT_TIMEOUT = 7200
MAX_TIMEOUT = 86400
MAX_ATTEMPTS = 10
CONDITIONS = frozenset(
    {
        "stringEquals",
        "numberEquals",
        "numberGreaterThan",
        "numberLessThan",
        "booleanEquals",
        "fileExists",
        "folderExists",
        "and",
        "or",
        "not",
    }
)


@dataclass(frozen=True, slots=True)
class Loop:
    """``loop``: ``forEach`` a list (or ``{list, delimiter}``), or ``for`` a numeric range."""

    name: str | None
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    action: str
    inputs: Plain
    on_failure: str  # Abort | Continue | Ignore
    timeout_seconds: int
    max_attempts: int
    condition: Plain  # the ``if`` document, or None
    loop: Loop | None
    where: Where  # the step's line, for run-time errors


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: str | None
    description: str


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    phases: tuple[Phase, ...]
    file: str

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


def load_component(path: Path) -> Component:
    return parse_component(path.read_text(), str(path))


def parse_component(source: str, file: str) -> Component:
    """The component in ``source`` (YAML), every step checked: a syntax error, an unknown key,
    an unknown action, bad inputs or a reference to a step that has not run yet is a
    KilnError naming ``file``, the line and the field."""
    root, where = compose(source, file)
    top = mapping(root, where, TOP_KEYS, ("name", "schemaVersion", "phases"))
    name = text(top["name"], field(where, top["name"], "name"))
    version = plain(top["schemaVersion"], field(where, top["schemaVersion"], "schemaVersion"))
    if str(version) not in ("1.0", "1"):
        raise field(where, top["schemaVersion"], "schemaVersion").fail(
            f"schemaVersion must be 1.0, not {version}"
        )
    description = ""
    if "description" in top:
        description = text(top["description"], field(where, top["description"], "description"))
    params = (
        _parameters(top["parameters"], field(where, top["parameters"], "parameters"))
        if ("parameters" in top)
        else ()
    )
    phases: list[Phase] = []
    done: set[str] = set()  # "phase.step" of every earlier step, for {{ … }} references
    for i, node in enumerate(sequence(top["phases"], field(where, top["phases"], "phases"))):
        phase = _phase(node, where.at(node, f"phases[{i}]"), {p.name for p in params}, done)
        if any(p.name == phase.name for p in phases):
            raise where.at(node, f"phases[{i}].name").fail(f"phase {phase.name} appears twice")
        phases.append(phase)
    return Component(name, description, params, tuple(phases), file)


def _parameters(node: yaml.Node, where: Where) -> tuple[Parameter, ...]:
    out: list[Parameter] = []
    for i, item in enumerate(sequence(node, where)):
        one = mapping(item, where.at(item, f"parameters[{i}]"))
        if len(one) != 1:
            raise where.at(item, f"parameters[{i}]").fail("each parameter is one 'Name: {type…}'")
        ((pname, spec),) = one.items()
        pw = where.at(spec, f"parameters.{pname}")
        if not STEP_NAME_RE.match(pname):
            raise pw.fail("a parameter name is letters, digits, '_' and '-'")
        body = mapping(spec, pw, PARAM_KEYS, ("type",))
        if text(body["type"], field(pw, body["type"], "type")) != "string":
            raise field(pw, body["type"], "type").fail("the only parameter type is string")
        default = None
        if "default" in body:
            default = str(plain(body["default"], field(pw, body["default"], "default")))
        desc = text(body["description"], pw) if "description" in body else ""
        out.append(Parameter(pname, default, desc))
    return tuple(out)


def _phase(node: yaml.Node, where: Where, params: set[str], done: set[str]) -> Phase:
    body = mapping(node, where, frozenset({"name", "steps"}), ("name", "steps"))
    name = text(body["name"], field(where, body["name"], "name"))
    if name not in PHASES:
        raise field(where, body["name"], "name").fail(
            f"unknown phase {name} (phases: {', '.join(PHASES)})"
        )
    steps: list[Step] = []
    for i, item in enumerate(sequence(body["steps"], field(where, body["steps"], "steps"))):
        step = _step(item, where.at(item, f"phases.{name}.steps[{i}]"), name, params, done)
        if any(s.name == step.name for s in steps):
            raise step.where.fail(f"step name {step.name} is used twice in phase {name}")
        steps.append(step)
        done.add(f"{name}.{step.name}")
    return Phase(name, tuple(steps))


def _step(node: yaml.Node, where: Where, phase: str, params: set[str], done: set[str]) -> Step:
    body = mapping(node, where, STEP_KEYS, ("name", "action"))
    name = text(body["name"], field(where, body["name"], "name"))
    if not STEP_NAME_RE.match(name):
        raise field(where, body["name"], "name").fail(
            "a step name starts with a letter: letters, digits, '_' and '-'"
        )
    here = Where(where.file, where.line, f"phases.{phase}.steps.{name}")
    action_where = field(here, body["action"], "action")
    action = text(body["action"], action_where)
    if action not in actions.ACTIONS:
        raise action_where.fail(
            f"unknown action {action} (actions: {', '.join(sorted(actions.ACTIONS))})"
        )
    inputs: Plain = None
    if "inputs" in body:
        inputs_where = field(here, body["inputs"], "inputs")
        inputs = plain(body["inputs"], inputs_where)
    else:
        inputs_where = here
    loop = _loop(body["loop"], field(here, body["loop"], "loop")) if "loop" in body else None
    for ref in VARIABLE_RE.findall(_flat(inputs)):
        _check_reference(ref, inputs_where, params, done, loop)
    problem = actions.ACTIONS[action].check(inputs)
    if problem:
        raise inputs_where.fail(problem)
    on_failure = "Abort"
    if "onFailure" in body:
        on_failure = text(body["onFailure"], field(here, body["onFailure"], "onFailure"))
        if on_failure not in ON_FAILURE:
            raise field(here, body["onFailure"], "onFailure").fail(
                f"onFailure is one of {', '.join(ON_FAILURE)}"
            )
    timeout = DEFAULT_TIMEOUT
    if "timeoutSeconds" in body:
        w = field(here, body["timeoutSeconds"], "timeoutSeconds")
        timeout = integer(body["timeoutSeconds"], w, 1, MAX_TIMEOUT)
    attempts = 1
    if "maxAttempts" in body:
        w = field(here, body["maxAttempts"], "maxAttempts")
        attempts = integer(body["maxAttempts"], w, 1, MAX_ATTEMPTS)
    condition: Plain = None
    if "if" in body:
        cw = field(here, body["if"], "if")
        condition = plain(body["if"], cw)
        _check_condition(condition, cw)
        for ref in VARIABLE_RE.findall(_flat(condition)):
            _check_reference(ref, cw, params, done, None)
    return Step(name, action, inputs, on_failure, timeout, attempts, condition, loop, here)


def _loop(node: yaml.Node, where: Where) -> Loop:
    body = mapping(node, where, LOOP_KEYS)
    name = text(body["name"], field(where, body["name"], "name")) if "name" in body else None
    if ("forEach" in body) == ("for" in body):
        raise where.fail("a loop has exactly one of forEach and for")
    if "forEach" in body:
        w = field(where, body["forEach"], "forEach")
        value = plain(body["forEach"], w)
        if isinstance(value, list):
            return Loop(name, tuple(str(v) for v in value))
        if isinstance(value, dict) and set(value) <= {"list", "delimiter"} and "list" in value:
            delimiter = str(value.get("delimiter", ","))
            return Loop(name, tuple(str(value["list"]).split(delimiter)))
        raise w.fail("forEach is a list, or {list: 'a,b', delimiter: ','}")
    w = field(where, body["for"], "for")
    spec = plain(body["for"], w)
    if not isinstance(spec, dict) or not {"start", "end"} <= set(spec) <= {
        "start",
        "end",
        "updateBy",
    }:
        raise w.fail("for is {start: N, end: M, updateBy: K}")
    start, end, by = spec["start"], spec["end"], spec.get("updateBy", 1)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, by)) or by == 0:
        raise w.fail("start, end and updateBy are integers, updateBy not 0")
    assert isinstance(start, int) and isinstance(end, int) and isinstance(by, int)
    values = tuple(str(v) for v in range(start, end + (1 if by > 0 else -1), by))
    if len(values) > 1000:
        raise w.fail("a loop runs at most 1000 times")
    return Loop(name, values)


def _check_condition(cond: Plain, where: Where) -> None:
    if not isinstance(cond, dict) or not cond:
        raise where.fail("a condition is a mapping such as {stringEquals: a, value: b}")
    ops = [k for k in cond if k != "value"]
    if len(ops) != 1 or ops[0] not in CONDITIONS:
        raise where.fail(f"a condition has one operator of {', '.join(sorted(CONDITIONS))}")
    op = ops[0]
    if op in ("and", "or"):
        items = cond[op]
        if not isinstance(items, list) or not items:
            raise where.fail(f"{op} takes a list of conditions")
        for item in items:
            _check_condition(item, where)
    elif op == "not":
        _check_condition(cond[op], where)
    elif op in ("fileExists", "folderExists"):
        if not isinstance(cond[op], str):
            raise where.fail(f"{op} takes a path")
    elif "value" not in cond:
        raise where.fail(f"{op} compares with 'value'")


def _check_reference(
    ref: str, where: Where, params: set[str], done: set[str], loop: Loop | None
) -> None:
    parts = ref.split(".")
    if len(parts) == 1 and ref in params:
        return
    if loop is not None and len(parts) == 2 and parts[0] in ("loop", loop.name or "loop"):
        if parts[1] in ("value", "index"):
            return
    if len(parts) == 4 and parts[2] == "outputs" and parts[3] == "stdout":
        if f"{parts[0]}.{parts[1]}" in done:
            return
        raise where.fail(f"{{{{ {ref} }}}} names a step that has not run before this one")
    raise where.fail(f"{{{{ {ref} }}}} is neither a parameter nor a step's outputs.stdout")


def _flat(value: Plain) -> str:
    if isinstance(value, list):
        return "\n".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(_flat(v) for v in value.values())
    return "" if value is None else str(value)


def substitute(value: Plain, variables: dict[str, str]) -> Plain:
    """``value`` with every ``{{ name }}`` in its strings replaced (names not in ``variables``
    stay as written)."""
    if isinstance(value, str):
        return VARIABLE_RE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def bind(component: Component, given: dict[str, str], where: Where) -> dict[str, str]:
    """The parameters' values: ``given`` (from the recipe) over the defaults; an unknown or
    missing one is refused at ``where`` (the recipe's line)."""
    names = {p.name for p in component.parameters}
    for extra in sorted(set(given) - names):
        raise where.fail(f"component {component.name} has no parameter {extra}")
    out: dict[str, str] = {}
    for p in component.parameters:
        value = given.get(p.name, p.default)
        if value is None:
            raise where.fail(f"component {component.name} needs parameter {p.name}")
        out[p.name] = value
    return out
