"""Component documents: AWS's format parsed with its lines; every refusal names file, line and
field (docs/builds.md#errors)."""

from __future__ import annotations

import pytest

from kiln.builder.component import bind, parse_component, substitute
from kiln.builder.yamlnodes import Where
from kiln.errors import KilnError

GOOD = """\
name: hello
description: says hello
schemaVersion: 1.0
parameters:
  - Greeting:
      type: string
      default: hello
phases:
  - name: build
    steps:
      - name: Say
        action: ExecuteBash
        timeoutSeconds: 60
        maxAttempts: 2
        onFailure: Continue
        inputs:
          commands:
            - echo "{{ Greeting }}"
      - name: Keep
        action: CreateFile
        inputs:
          - path: /root/said
            content: "{{ build.Say.outputs.stdout }}"
      - name: Each
        action: ExecuteBash
        loop:
          name: fruit
          forEach: [apple, pear]
        if:
          stringEquals: hello
          value: "{{ Greeting }}"
        inputs:
          commands: ["echo {{ fruit.value }}"]
  - name: validate
    steps:
      - name: Check
        action: ExecuteBash
        inputs:
          commands: ["test -s /root/said"]
"""


def refused(text: str) -> str:
    with pytest.raises(KilnError) as e:
        parse_component(text, "c.yaml")
    return e.value.message


def test_a_component_parses_with_its_steps_in_order() -> None:
    c = parse_component(GOOD, "c.yaml")
    assert c.name == "hello" and [p.name for p in c.phases] == ["build", "validate"]
    say, keep, each = c.phases[0].steps
    assert (say.action, say.timeout_seconds, say.max_attempts, say.on_failure) == (
        "ExecuteBash",
        60,
        2,
        "Continue",
    )
    assert keep.on_failure == "Abort" and keep.timeout_seconds == 7200 and keep.max_attempts == 1
    assert each.loop is not None and each.loop.values == ("apple", "pear")
    assert each.condition == {"stringEquals": "hello", "value": "{{ Greeting }}"}
    assert bind(c, {}, Where("r.yaml", 1, "components")) == {"Greeting": "hello"}
    assert substitute(say.inputs, {"Greeting": "hi"}) == {"commands": ['echo "hi"']}


def test_a_for_loop_counts_and_json_is_accepted() -> None:
    c = parse_component(
        '{"name": "n", "schemaVersion": "1.0", "phases": [{"name": "test", "steps": ['
        '{"name": "S", "action": "ExecuteBash", "loop": {"for": {"start": 1, "end": 5, '
        '"updateBy": 2}}, "inputs": {"commands": ["echo {{ loop.value }}"]}}]}]}',
        "c.json",
    )
    loop = c.phases[0].steps[0].loop
    assert loop is not None and loop.values == ("1", "3", "5")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("        timeoutSeconds: 60\n", "        timeoutSecond: 60\n"), "c.yaml:13: "),
        (("action: CreateFile", "action: MakeFile"), "c.yaml:20: phases.build.steps.Keep.action"),
        (
            ("onFailure: Continue", "onFailure: Retry"),
            "c.yaml:15: phases.build.steps.Say.onFailure",
        ),
        (("maxAttempts: 2", "maxAttempts: 99"), "c.yaml:14: phases.build.steps.Say.maxAttempts"),
        (("build.Say.outputs", "build.Later.outputs"), "c.yaml:22: phases.build.steps.Keep.inputs"),
        (('{{ Greeting }}"\n', '{{ Nope }}"\n'), "c.yaml:17: phases.build.steps.Say.inputs"),
        (("  - name: validate", "  - name: deploy"), "c.yaml:34: phases[1].name"),
        (("schemaVersion: 1.0", "schemaVersion: 2.0"), "c.yaml:3: schemaVersion"),
        (("description: says hello", "descripton: x"), "c.yaml:2: descripton"),
        (("- path: /root/said", "- pth: /root/said"), "c.yaml:22: phases.build.steps.Keep.inputs"),
        (
            ("forEach: [apple, pear]", "forEach: 3"),
            "c.yaml:28: phases.build.steps.Each.loop.forEach",
        ),
        (("stringEquals: hello", "looksLike: hello"), "c.yaml:30: phases.build.steps.Each.if"),
    ],
)
def test_a_bad_component_names_file_line_and_field(change: tuple[str, str], where: str) -> None:
    old, new = change
    assert old in GOOD
    message = refused(GOOD.replace(old, new, 1))
    assert message.startswith(where), message


def test_syntax_errors_and_repeated_steps_are_refused_with_their_line() -> None:
    assert refused("name: x\nphases: [\n").startswith("c.yaml:3: (document): not valid YAML")
    assert refused("").startswith("c.yaml:1: (document): the document is empty")
    doubled = GOOD.replace("      - name: Keep", "      - name: Say", 1)
    assert "step name Say is used twice in phase build" in refused(doubled)
    assert "unknown key" in refused(
        GOOD.replace("        timeoutSeconds: 60\n", "        timeoutSecond: 60\n")
    )


def test_recipe_parameters_must_be_known_and_required_ones_given() -> None:
    c = parse_component(GOOD.replace("      default: hello\n", ""), "c.yaml")
    w = Where("r.yaml", 7, "components[0].parameters")
    with pytest.raises(
        KilnError, match=r"r.yaml:7: components\[0\].parameters: .*needs parameter Greeting"
    ):
        bind(c, {}, w)
    with pytest.raises(KilnError, match="has no parameter Other"):
        bind(c, {"Greeting": "x", "Other": "y"}, w)
    assert bind(c, {"Greeting": "yo"}, w) == {"Greeting": "yo"}


def test_unsafe_tags_and_several_documents_are_refused() -> None:
    tagged = GOOD.replace("default: hello", "default: !!python/object:os.system echo")
    assert "parameters.Greeting.default: not a plain value" in refused(tagged)
    assert "not valid YAML" in refused(GOOD + "---\nname: again\n")
