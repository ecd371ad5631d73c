"""One phase of one component run in the guest: variables, ``if``, ``loop``, ``maxAttempts``,
``timeoutSeconds``, ``onFailure`` and ``outputs.stdout`` chaining (docs/builds.md#running)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from kiln.builder.actions import ACTIONS
from kiln.builder.component import Component, Step, substitute
from kiln.builder.yamlnodes import Plain
from kiln.services.builds.ports import GuestShell, RunResult

LOG_TAIL = 20  # lines of a failed step's output in its error


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A line of the build's log: ``kind`` is phase, step, output, done, failed, skipped,
    info."""

    kind: str
    text: str


Emit = Callable[[StepEvent], None]


class StepFailed(Exception):
    def __init__(self, where: str, exit_code: int, tail: str) -> None:
        super().__init__(f"{where} failed with exit code {exit_code}")
        self.where = where
        self.exit_code = exit_code
        self.tail = tail


def run_phase(
    shell: GuestShell,
    component: Component,
    phase_name: str,
    parameters: dict[str, str],
    outputs: dict[str, str],
    emit: Emit,
) -> None:
    """Run the component's ``phase_name`` steps in order; ``outputs`` collects each step's
    stdout as ``phase.step.outputs.stdout`` (and is read for later references). An Abort
    step that fails raises StepFailed."""
    phase = component.phase(phase_name)
    if phase is None:
        return
    emit(StepEvent("phase", f"{component.name}: {phase_name}"))
    for step in phase.steps:
        variables = {**parameters, **outputs}
        label = f"{component.name}/{phase_name}/{step.name}"
        if step.condition is not None and not _holds(shell, substitute(step.condition, variables)):
            emit(StepEvent("skipped", f"{label} (if: false)"))
            continue
        emit(StepEvent("step", f"{label} ({step.action})"))
        outputs[f"{phase_name}.{step.name}.outputs.stdout"] = _run_step(
            shell, step, label, variables, emit
        )


def _run_step(
    shell: GuestShell, step: Step, label: str, variables: dict[str, str], emit: Emit
) -> str:
    action = ACTIONS[step.action]
    values: tuple[str | None, ...] = step.loop.values if step.loop is not None else (None,)
    out: list[str] = []
    for index, value in enumerate(values):
        scoped = dict(variables)
        if step.loop is not None and value is not None:
            for name in {"loop", step.loop.name or "loop"}:
                scoped[f"{name}.value"] = value
                scoped[f"{name}.index"] = str(index)
        script = action.script(substitute(step.inputs, scoped))
        if action.reboots:
            emit(StepEvent("info", "rebooting the guest"))
            shell.reboot(script, step.timeout_seconds)
            continue
        result = _attempts(shell, step, script, label, emit)
        if result.exit_code != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL:])
            why = (
                f"timed out after {step.timeout_seconds} s"
                if result.timed_out
                else (f"exit code {result.exit_code}")
            )
            if step.on_failure == "Abort":
                emit(StepEvent("failed", f"{label}: {why}"))
                raise StepFailed(label, result.exit_code, tail)
            emit(StepEvent("failed", f"{label}: {why} (onFailure {step.on_failure}: going on)"))
        out.append(result.stdout)
    emit(StepEvent("done", label))
    return "".join(out).rstrip("\n")


def _attempts(shell: GuestShell, step: Step, script: str, label: str, emit: Emit) -> RunResult:
    result = RunResult(1, "", "")
    for attempt in range(1, step.max_attempts + 1):
        if attempt > 1:
            emit(StepEvent("info", f"{label}: attempt {attempt} of {step.max_attempts}"))
        result = shell.run(
            script, step.timeout_seconds, lambda line: emit(StepEvent("output", line))
        )
        if result.exit_code == 0:
            break
    return result


def _holds(shell: GuestShell, cond: Plain) -> bool:
    """An ``if`` document (already substituted); fileExists and folderExists ask the guest."""
    assert isinstance(cond, dict)
    op = next(k for k in cond if k != "value")
    arg, value = cond[op], cond.get("value")
    if op == "and":
        return isinstance(arg, list) and all(_holds(shell, c) for c in arg)
    if op == "or":
        return isinstance(arg, list) and any(_holds(shell, c) for c in arg)
    if op == "not":
        return not _holds(shell, arg)
    if op in ("fileExists", "folderExists"):
        flag = "-f" if op == "fileExists" else "-d"
        return (
            shell.run(f"test {flag} {shlex.quote(str(arg))}\n", 60, lambda _l: None).exit_code == 0
        )
    if op == "stringEquals":
        return str(arg) == str(value)
    if op == "booleanEquals":
        return str(arg).lower() == str(value).lower()
    try:
        a, b = float(str(arg)), float(str(value))
    except ValueError:
        return False
    if op == "numberEquals":
        return a == b
    if op == "numberGreaterThan":
        return b > a  # AWS: the value is greater than the operand
    return b < a  # numberLessThan
