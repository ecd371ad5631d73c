"""The rules' layout, checked: the rule of every EC2 action is found from the action's name.

``RegisterImage`` -> ``def register_image`` in exactly one module of kiln/services/<family>/,
and that module is named after the action or after the resource it acts on
(docs/architecture.md#where-things-go).
"""

from __future__ import annotations

import re
from pathlib import Path

import kiln.services
from kiln.ec2.actions import ACTIONS

SERVICES = Path(kiln.services.__file__).parent


def snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def rule_modules(name: str) -> list[Path]:
    pattern = re.compile(rf"^def {name}\(", re.M)
    return [p for p in SERVICES.rglob("*.py") if pattern.search(p.read_text())]


def test_every_action_has_one_rule_named_after_it_in_a_family_package() -> None:
    for action in ACTIONS:  # Image Builder has its own CreateImage, GetImage… in imagebuilder/
        found = [p for p in rule_modules(snake(action)) if p.parent != SERVICES / "imagebuilder"]
        assert len(found) == 1, (action, found)
        family = found[0].parent
        assert family != SERVICES and (family / "__init__.py").exists(), (action, found)


def test_every_ssm_action_has_one_rule_in_the_parameters_family() -> None:
    from kiln.ssm.actions import ACTIONS as SSM_ACTIONS

    for action in SSM_ACTIONS:
        found = rule_modules(snake(action))
        assert len(found) == 1, (action, found)
        assert found[0].parent == SERVICES / "parameters", (action, found)


def test_every_rbin_action_has_one_rule_in_the_recyclebin_family() -> None:
    from kiln.rbin.actions import ACTIONS as RBIN_ACTIONS

    for action in RBIN_ACTIONS:  # KMS has its own TagResource/UntagResource in keys/
        found = [p for p in rule_modules(snake(action)) if p.parent == SERVICES / "recyclebin"]
        assert len(found) == 1, (action, found)


def test_every_imagebuilder_action_has_one_rule_in_the_imagebuilder_family() -> None:
    from kiln.imagebuilder.actions import ACTIONS as IMAGEBUILDER_ACTIONS

    for action in IMAGEBUILDER_ACTIONS:
        found = [p for p in rule_modules(snake(action)) if p.parent == SERVICES / "imagebuilder"]
        assert len(found) == 1, (action, found)


def test_the_job_kinds_are_registered_once() -> None:
    from kiln.services.job_kinds import JOB_KINDS

    assert set(JOB_KINDS) == {
        "import-image",
        "import-snapshot",
        "export-image",
        "copy-snapshot",
        "copy-image",
        "create-volume",
        "create-snapshot",
        "create-image",
    }


def test_the_runtime_does_not_import_the_rules() -> None:
    runtime = SERVICES.parent / "runtime"
    for path in runtime.rglob("*.py"):
        assert not re.search(r"^\s*(from|import) kiln\.services", path.read_text(), re.M), path
