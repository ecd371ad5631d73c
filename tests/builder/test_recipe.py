"""Recipes and distribution configurations; the components that ship with Kiln."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builder.component import load_component
from kiln.builder.recipe import (
    BUILTIN_DIR,
    builtin_components,
    load_recipe,
    parse_distribution,
    version_matches,
)
from kiln.errors import KilnError

HELLO = """\
name: hello
schemaVersion: 1.0
parameters:
  - Who:
      type: string
phases:
  - name: build
    steps:
      - name: Say
        action: ExecuteBash
        inputs:
          commands: ["echo {{ Who }}"]
"""
RECIPE = """\
name: web
semanticVersion: 1.2.0
parentImage: kiln/micro
components:
  - name: hello.yaml
    parameters:
      - name: Who
        value: [world]
  - name: kiln:harden-ssh
blockDeviceMappings:
  - deviceName: /dev/xvda
    ebs: {volumeSize: 2, volumeType: gp3, deleteOnTermination: true}
tags: {team: infra}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "hello.yaml").write_text(HELLO)
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(KilnError) as e:
        load_recipe(write(tmp_path, text))
    return e.value.message.replace(str(tmp_path) + "/", "")


def test_a_recipe_reads_its_components_and_binds_their_parameters(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, RECIPE))
    assert (r.name, r.version, r.parent, r.instance_type, r.tags) == (
        "web",
        "1.2.0",
        "kiln/micro",
        "t2.micro",
        {"team": "infra"},
    )
    hello, ssh = r.components
    assert hello.component.name == "hello" and hello.parameters == {"Who": "world"}
    assert ssh.component.name == "harden-ssh"
    assert ssh.parameters == {"PermitRootLogin": "prohibit-password"}
    assert r.block_devices[0].volume_size == 2 and r.block_devices[0].volume_type == "gp3"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("1.2.0", "1.2"), "recipe.yaml:2: semanticVersion: 1.2 is not a semantic version"),
        (
            ("kiln:harden-ssh", "kiln:harden-everything"),
            "recipe.yaml:9: components[1].name: no component kiln:harden-everything",
        ),
        (("hello.yaml", "nope.yaml"), "recipe.yaml:5: components[0].name: no component file"),
        (
            ("name: Who", "name: Whom"),
            "recipe.yaml:7: components[0].parameters: component hello has no parameter Whom",
        ),
        (("tags:", "labels:"), "recipe.yaml:13: labels: unknown key"),
        (
            ("volumeType: gp3", "volumeType: fast"),
            "recipe.yaml:12: blockDeviceMappings[0].ebs.volumeType",
        ),
        (("kiln/micro", "web/x.1.x"), "recipe.yaml:3: parentImage: in a version filter"),
    ],
)
def test_a_bad_recipe_names_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    assert change[0] in RECIPE
    got = refused(tmp_path, RECIPE.replace(*change, 1))
    assert got.startswith(message), got


def test_a_bad_component_of_a_recipe_names_the_component_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(HELLO.replace("ExecuteBash", "ExecutePython"))
    got = refused(tmp_path, RECIPE.replace("hello.yaml", "bad.yaml"))
    assert got.startswith(
        "bad.yaml:10: phases.build.steps.Say.action: unknown action ExecutePython"
    )


def test_version_wildcards() -> None:
    assert version_matches("1.x.x", "1.2.3") and version_matches("x.x.x", "0.0.1")
    assert version_matches("1.2.x", "1.2.9") and not version_matches("1.2.x", "1.3.0")
    assert not version_matches("2.x.x", "1.2.3")


def test_a_distribution_names_regions_shares_tags_keys_and_deprecation() -> None:
    d = parse_distribution(
        """\
name: prod
distributions:
  - region: us-east-1
    amiDistributionConfiguration:
      name: web-prod
      amiTags: {stage: prod}
      launchPermission: {userIds: ["111122223333"]}
      deprecationTime: "2030-01-01T00:00:00Z"
  - region: eu-west-1
    amiDistributionConfiguration:
      kmsKeyId: alias/web
""",
        "dist.yaml",
    )
    us, eu = d.regions
    assert (us.region, us.name, us.tags, us.share_with, us.deprecation_time) == (
        "us-east-1",
        "web-prod",
        {"stage": "prod"},
        ("111122223333",),
        "2030-01-01T00:00:00Z",
    )
    assert eu.kms_key_id == "alias/web" and eu.share_with == ()
    with pytest.raises(KilnError, match=r"dist.yaml:4: .*userIds: 1234 is not a 12-digit"):
        parse_distribution(
            "distributions:\n  - region: us-east-1\n    amiDistributionConfiguration:\n"
            "      launchPermission: {userIds: ['1234']}\n",
            "dist.yaml",
        )
    with pytest.raises(
        KilnError, match=r"dist.yaml:3: distributions\[1\].region: region us-east-1 appears twice"
    ):
        parse_distribution(
            "distributions:\n  - region: us-east-1\n  - region: us-east-1\n", "dist.yaml"
        )


def test_every_shipped_component_parses() -> None:
    names = builtin_components()
    assert {
        "kiln:harden-ssh",
        "kiln:remove-services",
        "kiln:harden-sysctl",
        "kiln:firewall",
        "kiln:cleanup",
    } <= set(names)
    for path in BUILTIN_DIR.glob("*.yaml"):
        c = load_component(path)
        assert c.phase("build") is not None and c.description, path
