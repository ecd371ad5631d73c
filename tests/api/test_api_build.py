"""`kiln build` against a live `kiln serve` with real VMs (micro under TCG): a recipe builds an
image whose test phase passes on a new instance of it, and is distributed; a failing recipe
stops with its step's exit code and log and leaves no image and no instance."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_live import KILN, Creds, LiveKiln
from test_api_instances import micro_server

import kiln

pytestmark = pytest.mark.slow
REGION = "us-east-1"
WAIT = 900  # guards against hanging, never a speed requirement
ENV = {**os.environ, "PYTHONPATH": str(Path(kiln.__file__).parent.parent)}

COMPONENT = """\
name: hello
description: writes a file and checks it
schemaVersion: 1.0
parameters:
  - Greeting:
      type: string
      default: hi
phases:
  - name: build
    steps:
      - name: Kernel
        action: ExecuteBash
        inputs:
          commands: ["uname -s"]
      - name: Write
        action: CreateFile
        inputs:
          - path: /opt/hello/greeting.txt
            content: "{{ Greeting }} from {{ build.Kernel.outputs.stdout }}"
            permissions: "0640"
      - name: Each
        action: ExecuteBash
        loop:
          forEach: [one, two]
        inputs:
          commands: ["echo {{ loop.value }} >> /opt/hello/loop.txt"]
      - name: BootId
        action: ExecuteBash
        inputs:
          commands: ["cat /proc/sys/kernel/random/boot_id"]
      - name: Restart
        action: Reboot
      - name: Rebooted
        action: ExecuteBash
        inputs:
          commands:
            - test "$(cat /proc/sys/kernel/random/boot_id)" != "{{ build.BootId.outputs.stdout }}"
            - test -s /opt/hello/greeting.txt
  - name: validate
    steps:
      - name: Present
        action: ExecuteBash
        inputs:
          commands: ["grep -q '{{ Greeting }} from Linux' /opt/hello/greeting.txt"]
  - name: test
    steps:
      - name: OnTheNewImage
        action: ExecuteBash
        inputs:
          commands:
            - test "$(cat /opt/hello/greeting.txt)" = "{{ Greeting }} from Linux"
            - test "$(cat /opt/hello/loop.txt | tr '\\n' ' ')" = "one two "
            - stat -c %a /opt/hello/greeting.txt | grep -qx 640
"""
RECIPE = """\
name: hello
semanticVersion: 1.0.0
parentImage: kiln/micro
components:
  - name: hello.yaml
    parameters:
      - name: Greeting
        value: [bonjour]
tags: {team: web}
"""
FAILING = """\
name: broken
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Works
        action: CreateFile
        inputs:
          - path: /root/partial
            content: x
      - name: Breaks
        action: ExecuteBash
        inputs:
          commands: ["echo going down", "echo oops >&2", "exit 7"]
"""


@dataclass
class BuildWorld:
    kiln: LiveKiln
    owner: Creds
    grantee: Creds
    dir: Path

    def ec2(self, region: str = REGION) -> Any:
        return self.kiln.client(self.owner, region)

    def args(self, recipe: Path, *extra: str) -> list[str]:
        return [
            *KILN,
            "build",
            str(recipe),
            "--account",
            self.owner.account_id,
            "--endpoint-url",
            self.kiln.url,
            "--data-dir",
            str(self.kiln.data_dir),
            "--json",
            *extra,
        ]

    def build(self, recipe: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(recipe, *extra),
            capture_output=True,
            text=True,
            timeout=WAIT,
            cwd=self.dir,  # where --on-error keep writes the key
            env=ENV,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildWorld]:
    data_dir = tmp_path_factory.mktemp("kiln-build")
    with micro_server(data_dir, ("owner", "grantee"), REGION) as (kiln, accounts, _micro):
        work = data_dir / "work"
        work.mkdir()
        yield BuildWorld(kiln, accounts[0], accounts[1], work)


def live_instances(ec2: Any) -> list[str]:
    return [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]


def test_kiln_build_makes_a_tested_distributed_image(world: BuildWorld) -> None:
    (world.dir / "hello.yaml").write_text(COMPONENT)
    recipe = world.dir / "recipe.yaml"
    recipe.write_text(RECIPE)
    dist = world.dir / "dist.yaml"
    dist.write_text(
        "distributions:\n"
        f"  - region: {REGION}\n"
        "    amiDistributionConfiguration:\n"
        "      amiTags: {stage: prod}\n"
        f"      launchPermission: {{userIds: ['{world.grantee.account_id}']}}\n"
        "  - region: eu-west-1\n"
        "    amiDistributionConfiguration:\n"
        "      name: hello-eu\n"
        "      deprecationTime: '2031-01-01T00:00:00Z'\n"
    )
    done = world.build(recipe, "--distribution", str(dist))
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    out = json.loads(done.stdout)
    assert out["State"] == "available" and out["BuildVersion"] == "hello/1.0.0/1", out
    image_id = out["ImageId"]
    log = "\n".join(out["Log"])
    for step in (
        "hello/build/Write",
        "hello/build/Rebooted",  # after the Reboot step, in a new boot of the same instance
        "hello/validate/Present",
        "hello/test/OnTheNewImage",
    ):
        assert f"[done] {step}" in log, log
    image = world.ec2().describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Name"] == "hello/1.0.0/1" and image["State"] == "available"
    assert image["SourceImageId"] == out["ParentImageId"]
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert (
        tags["team"] == "web" and tags["stage"] == "prod" and tags["kiln:build"] == "hello/1.0.0/1"
    )
    perms = world.ec2().describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [{"UserId": world.grantee.account_id}]
    (eu,) = [i for i in out["Images"] if i["Region"] == "eu-west-1"]
    copy = world.ec2("eu-west-1").describe_images(ImageIds=[eu["ImageId"]])["Images"][0]
    assert copy["Name"] == "hello-eu" and copy["DeprecationTime"].startswith("2031-01-01")
    assert live_instances(world.ec2()) == []  # the build and test instances are gone
    assert world.ec2().describe_key_pairs()["KeyPairs"] == []
    # without kiln:cleanup the image keeps the build instance's key and host key
    assert {"secrets.authorized-keys", "secrets.ssh-host-keys"} <= findings(world, image_id)


def findings(world: BuildWorld, image_id: str) -> set[str]:
    scanned = world.kiln.kiln(
        "scan", image_id, "--region", REGION, "--data-dir", str(world.kiln.data_dir), "--json"
    )
    assert scanned.returncode == 0, scanned.stderr
    return {f["CheckId"] for f in json.loads(scanned.stdout)["Findings"]}


def test_the_shipped_hardening_components_build_a_clean_image(world: BuildWorld) -> None:
    recipe = world.dir / "hardened.yaml"
    recipe.write_text(
        "name: hardened\nsemanticVersion: 0.1.0\nparentImage: kiln/micro\ncomponents:\n"
        "  - name: kiln:harden-ssh\n  - name: kiln:remove-services\n"
        "  - name: kiln:harden-sysctl\n  - name: kiln:cleanup\n"
    )
    done = world.build(recipe)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    log = "\n".join(out["Log"])
    for step in (
        "harden-ssh/validate/SshdAgrees",
        "cleanup/validate/NothingLeft",
        "cleanup/test/RegeneratedAtBoot",  # a new host key on the new instance's first boot
        "harden-sysctl/test/InForce",
    ):
        assert f"[done] {step}" in log, log
    found = findings(world, out["ImageId"])
    hardening = {
        "secrets.authorized-keys",
        "secrets.ssh-host-keys",
        "secrets.shell-history",
        "secrets.private-key",
        "accounts.root-password",
        "sysctl.network",
    }
    assert not found & hardening, found


def test_a_failing_step_stops_the_build_and_leaves_nothing(world: BuildWorld) -> None:
    (world.dir / "broken.yaml").write_text(FAILING)
    recipe = world.dir / "broken-recipe.yaml"
    recipe.write_text(
        RECIPE.replace("hello.yaml", "broken.yaml")
        .replace("    parameters:\n      - name: Greeting\n        value: [bonjour]\n", "")
        .replace("name: hello\n", "name: broken\n", 1)
    )
    before = {i["ImageId"] for i in world.ec2().describe_images(Owners=["self"])["Images"]}
    failed = world.build(recipe)
    assert failed.returncode == 1
    assert "error: build broken/1.0.0/1 failed: broken/build/Breaks failed with exit code 7" in (
        failed.stderr
    ), failed.stderr[-3000:]
    out = json.loads(failed.stdout)
    assert out["State"] == "failed" and out["ExitCode"] == 7 and out["ImageId"] is None
    assert "going down" in out["Reason"] and "oops" in out["Reason"]
    log = "\n".join(out["Log"])
    assert "[done] broken/build/Works" in log and "[failed] broken/build/Breaks" in log
    after = {i["ImageId"] for i in world.ec2().describe_images(Owners=["self"])["Images"]}
    assert after == before  # no image
    assert live_instances(world.ec2()) == []  # no instance
    groups = world.ec2().describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].startswith("kiln-build-")]
    # the next build of the version is /2: a failed build keeps its number
    again = world.build(recipe, "--on-error", "keep")
    assert again.returncode == 1
    kept = json.loads(again.stdout)
    assert kept["BuildVersion"] == "broken/1.0.0/2" and kept["KeptInstanceId"]
    assert live_instances(world.ec2()) == [kept["KeptInstanceId"]]
    assert (world.dir / f"{kept['KeptInstanceId']}.pem").exists()
    world.ec2().terminate_instances(InstanceIds=[kept["KeptInstanceId"]])
    listed = world.kiln.kiln(
        "builds",
        "--account",
        world.owner.account_id,
        "--recipe",
        "broken",
        "--data-dir",
        str(world.kiln.data_dir),
        "--json",
    )
    assert listed.returncode == 0, listed.stderr
    versions = json.loads(listed.stdout)
    assert [(v["BuildVersion"], v["State"]) for v in versions] == [
        ("broken/1.0.0/1", "failed"),
        ("broken/1.0.0/2", "failed"),
    ]
    assert "exit code 7" in versions[0]["Reason"]
    assert "[failed] broken/build/Breaks: exit code 7" in versions[0]["Log"]


def test_a_bad_recipe_is_refused_before_anything_starts(world: BuildWorld) -> None:
    recipe = world.dir / "bad.yaml"
    recipe.write_text(RECIPE.replace("semanticVersion", "semVer"))
    bad = world.build(recipe)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith(f"error: InvalidParameterValue: {recipe}:2: semVer: unknown key")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_restart_of_kiln_serve_mid_step_fails_the_build_honestly(world: BuildWorld) -> None:
    """The guest's forwarded SSH port is the server's: a restart drops the step's session, so
    the step's outcome is unknown and the build fails, saying so, and cleans up through the
    restarted server."""
    (world.dir / "slow.yaml").write_text(
        "name: slow\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
        "      - name: Wait\n        action: ExecuteBash\n"
        "        inputs: {commands: ['echo waiting', 'sleep 15']}\n"
    )
    recipe = world.dir / "slow-recipe.yaml"
    recipe.write_text(
        "name: slow\nsemanticVersion: 1.0.0\nparentImage: kiln/micro\n"
        "components:\n  - name: slow.yaml\n"
    )
    before = {i["ImageId"] for i in world.ec2().describe_images(Owners=["self"])["Images"]}
    proc = subprocess.Popen(
        world.args(recipe),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=world.dir,
        env=ENV,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:  # the live log (on stderr with --json)
            if "waiting" in line:
                break
        world.kiln.stop()  # while the step runs in the guest
        world.kiln.start()
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    result = json.loads(out)
    assert result["State"] == "failed" and result["ExitCode"] == 255
    assert "the SSH session to the guest was lost" in result["Reason"]
    assert live_instances(world.ec2()) == []
    after = {i["ImageId"] for i in world.ec2().describe_images(Owners=["self"])["Images"]}
    assert after == before
