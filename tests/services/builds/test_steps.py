"""A phase's semantics (if, loop, maxAttempts, timeoutSeconds, onFailure, outputs chaining),
its scripts run by a real /bin/sh on this host: the GuestShell here is the host's shell, not
a guest's, and nothing is stubbed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.builder.component import parse_component
from kiln.services.builds.ports import RunResult
from kiln.services.builds.steps import StepEvent, StepFailed, run_phase


class HostShell:
    """The host's /bin/sh as the GuestShell (scripts run in ``cwd``)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.runs = 0

    def run(self, script: str, timeout_s: int, output: Callable[[str], None]) -> RunResult:
        self.runs += 1
        try:
            p = subprocess.run(
                ["/bin/sh", "-c", script],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                cwd=self.cwd,
            )
        except subprocess.TimeoutExpired:
            return RunResult(124, "", "", True)
        for line in (p.stdout + p.stderr).splitlines():
            output(line)
        return RunResult(p.returncode, p.stdout, p.stderr)

    def reboot(self, script: str, timeout_s: int) -> None:
        raise AssertionError("no reboot here")

    def close(self) -> None:
        pass


def component(steps: str) -> str:
    return f"name: c\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n{steps}"


def run(
    tmp_path: Path, steps: str, params: dict[str, str] | None = None
) -> tuple[dict[str, str], list[StepEvent]]:
    events: list[StepEvent] = []
    outputs: dict[str, str] = {}
    run_phase(
        HostShell(tmp_path),
        parse_component(component(steps), "c.yaml"),
        "build",
        params or {},
        outputs,
        events.append,
    )
    return outputs, events


def test_outputs_chain_loops_iterate_and_conditions_skip(tmp_path: Path) -> None:
    outputs, events = run(
        tmp_path,
        """\
      - name: Who
        action: ExecuteBash
        inputs: {commands: ["echo world"]}
      - name: Greet
        action: ExecuteBash
        loop: {name: n, forEach: [a, b]}
        inputs: {commands: ["echo {{ n.index }}{{ n.value }}-{{ build.Who.outputs.stdout }}"]}
      - name: Never
        action: CreateFile
        if: {not: {stringEquals: world, value: "{{ build.Who.outputs.stdout }}"}}
        inputs: [{path: never, content: x}]
      - name: Exists
        action: ExecuteBash
        if: {and: [{fileExists: marker}, {numberGreaterThan: 1, value: 2}]}
        inputs: {commands: ["echo ran"]}
""",
    )
    assert outputs["build.Who.outputs.stdout"] == "world"
    assert outputs["build.Greet.outputs.stdout"] == "0a-world\n1b-world"
    assert not (tmp_path / "never").exists()
    assert [e.text for e in events if e.kind == "skipped"] == [
        "c/build/Never (if: false)",
        "c/build/Exists (if: false)",
    ]
    (tmp_path / "marker").write_text("")
    outputs, _ = run(
        tmp_path,
        """\
      - name: Exists
        action: ExecuteBash
        if: {and: [{fileExists: marker}, {numberGreaterThan: 1, value: 2}]}
        inputs: {commands: ["echo ran"]}
""",
    )
    assert outputs["build.Exists.outputs.stdout"] == "ran"


def test_max_attempts_retry_until_success(tmp_path: Path) -> None:
    outputs, events = run(
        tmp_path,
        """\
      - name: Flaky
        action: ExecuteBash
        maxAttempts: 3
        inputs: {commands: ["echo x >> tries", "test $(wc -l < tries) -ge 3"]}
""",
    )
    assert (tmp_path / "tries").read_text() == "x\nx\nx\n"
    assert [e.text for e in events if e.kind == "info"] == [
        "c/build/Flaky: attempt 2 of 3",
        "c/build/Flaky: attempt 3 of 3",
    ]


def test_abort_stops_with_the_exit_code_and_output_continue_goes_on(tmp_path: Path) -> None:
    steps = """\
      - name: Soft
        action: ExecuteBash
        onFailure: Continue
        inputs: {commands: ["exit 3"]}
      - name: Hard
        action: ExecuteBash
        inputs: {commands: ["echo visible", "exit 9"]}
      - name: After
        action: CreateFile
        inputs: [{path: after, content: x}]
"""
    with pytest.raises(StepFailed) as e:
        run(tmp_path, steps)
    assert (e.value.where, e.value.exit_code, e.value.tail) == ("c/build/Hard", 9, "visible")
    assert not (tmp_path / "after").exists()


def test_a_step_past_its_timeout_fails(tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as e:
        run(
            tmp_path,
            """\
      - name: Slow
        action: ExecuteBash
        timeoutSeconds: 1
        inputs: {commands: ["sleep 30"]}
""",
        )
    assert e.value.exit_code == 124
