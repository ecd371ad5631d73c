"""Image Builder's CreateImage with real VMs (micro under TCG) through boto3's unmodified
``imagebuilder`` client: the build runs inside ``kiln serve``, GetImage goes to AVAILABLE with
its output AMI (which EC2 DescribeImages shows), the step log lists the steps; a failing
component ends FAILED with no image and no instance left. docs/imagebuilder.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_live import Creds, LiveKiln
from test_api_build import live_instances
from test_api_instances import micro_server

pytestmark = pytest.mark.slow
REGION = "us-east-1"
WAIT = 1200  # guards against hanging, never a speed requirement

HELLO = """\
name: hello
schemaVersion: 1.0
parameters:
  - Greeting:
      type: string
      default: hi
phases:
  - name: build
    steps:
      - name: Write
        action: CreateFile
        inputs:
          - path: /opt/hello.txt
            content: "{{ Greeting }}"
  - name: test
    steps:
      - name: Read
        action: ExecuteBash
        inputs:
          commands: ['test "$(cat /opt/hello.txt)" = "{{ Greeting }}"']
"""
BROKEN = """\
name: broken
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Breaks
        action: ExecuteBash
        inputs:
          commands: ["echo oops", "exit 3"]
"""


@dataclass
class World:
    kiln: LiveKiln
    owner: Creds

    def ec2(self) -> Any:
        return self.kiln.client(self.owner, REGION)

    def ib(self) -> Any:
        return self.kiln.client(self.owner, REGION, "imagebuilder")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with micro_server(tmp_path_factory.mktemp("kiln-ib"), ("owner",), REGION) as (
        kiln,
        accounts,
        _,
    ):
        yield World(kiln, accounts[0])


def build(
    world: World,
    name: str,
    data: str,
    params: list[dict[str, Any]],
    distributions: list[dict[str, Any]] | None = None,
) -> str:
    ib = world.ib()
    component = ib.create_component(
        name=name, semanticVersion="1.0.0", platform="Linux", data=data
    )["componentBuildVersionArn"]
    recipe = ib.create_image_recipe(
        name=name,
        semanticVersion="1.0.0",
        parentImage="kiln/micro",
        components=[{"componentArn": component, **({"parameters": params} if params else {})}],
    )["imageRecipeArn"]
    infra = ib.create_infrastructure_configuration(
        name=name, instanceProfileName="kiln", instanceTypes=["t2.micro"]
    )["infrastructureConfigurationArn"]
    dist = ib.create_distribution_configuration(
        name=name,
        distributions=distributions
        or [{"region": REGION, "amiDistributionConfiguration": {"amiTags": {"by": "ib"}}}],
    )["distributionConfigurationArn"]
    return str(
        ib.create_image(
            imageRecipeArn=recipe,
            infrastructureConfigurationArn=infra,
            distributionConfigurationArn=dist,
        )["imageBuildVersionArn"]
    )


def wait_done(world: World, arn: str) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        image = world.ib().get_image(imageBuildVersionArn=arn)["image"]
        status = image["state"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("AVAILABLE", "FAILED"):
            return image, seen
        time.sleep(2)
    raise AssertionError(f"{arn} still {seen}")


def steps(world: World, arn: str) -> list[dict[str, Any]]:
    (execution,) = world.ib().list_workflow_executions(imageBuildVersionArn=arn)[
        "workflowExecutions"
    ]
    return list(
        world.ib().list_workflow_step_executions(
            workflowExecutionId=execution["workflowExecutionId"]
        )["steps"]
    )


def test_create_image_builds_tests_and_lists_its_ami(world: World) -> None:
    dists = [
        {"region": REGION, "amiDistributionConfiguration": {"amiTags": {"by": "ib"}}},
        {"region": "eu-west-1", "amiDistributionConfiguration": {"name": "hello-eu"}},
    ]
    arn = build(world, "hello", HELLO, [{"name": "Greeting", "value": ["bonjour"]}], dists)
    account = world.owner.account_id
    assert arn == f"arn:aws:imagebuilder:{REGION}:{account}:image/hello/1.0.0/1"
    image, seen = wait_done(world, arn)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert "BUILDING" in seen and seen[-1] == "AVAILABLE"
    ami, eu = image["outputResources"]["amis"]
    assert ami["region"] == REGION and ami["image"].startswith("ami-")
    assert eu["region"] == "eu-west-1" and eu["image"] != ami["image"]
    copy = world.kiln.client(world.owner, "eu-west-1").describe_images(ImageIds=[eu["image"]])
    assert copy["Images"][0]["Name"] == "hello-eu" and copy["Images"][0]["State"] == "available"
    found = world.ec2().describe_images(ImageIds=[ami["image"]])["Images"][0]
    assert found["State"] == "available" and found["Name"] == "hello/1.0.0/1"
    assert {t["Key"]: t["Value"] for t in found["Tags"]}["by"] == "ib"
    done = {(s["name"], s["status"]) for s in steps(world, arn)}
    assert done == {("hello/build/Write", "COMPLETED"), ("hello/test/Read", "COMPLETED")}
    versions = world.ib().list_image_build_versions(
        imageVersionArn=f"arn:aws:imagebuilder:{REGION}:{account}:image/hello/1.0.0"
    )["imageSummaryList"]
    assert [v["arn"] for v in versions] == [arn]
    listed = world.ib().list_images(owner="Self")["imageVersionList"]
    assert [i["arn"] for i in listed] == [arn.rsplit("/", 1)[0]]
    assert live_instances(world.ec2()) == []
    # DeleteImage forgets the build version; its AMI stays in EC2
    world.ib().delete_image(imageBuildVersionArn=arn)
    assert world.ib().list_images(owner="Self")["imageVersionList"] == []
    assert world.ec2().describe_images(ImageIds=[ami["image"]])["Images"]


def test_a_failing_component_ends_failed_leaving_nothing(world: World) -> None:
    before = {i["ImageId"] for i in world.ec2().describe_images(Owners=["self"])["Images"]}
    arn = build(world, "broken", BROKEN, [])
    image, _ = wait_done(world, arn)
    assert image["state"]["status"] == "FAILED"
    reason = image["state"]["reason"]
    assert "broken/build/Breaks failed with exit code 3" in reason and "oops" in reason, reason
    assert image.get("outputResources", {}).get("amis", []) == []
    assert [(s["name"], s["status"]) for s in steps(world, arn)] == [
        ("broken/build/Breaks", "FAILED")
    ]
    after = {i["ImageId"] for i in world.ec2().describe_images(Owners=["self"])["Images"]}
    assert after == before
    assert live_instances(world.ec2()) == []


SLOW = HELLO.replace(
    "  - name: test\n",
    "      - name: Wait\n        action: ExecuteBash\n"
    '        inputs:\n          commands: ["sleep 600"]\n  - name: test\n',
)


def test_a_build_running_when_the_server_stops_ends_failed_leaving_no_instance(
    world: World,
) -> None:
    arn = build(world, "stopped", SLOW.replace("name: hello", "name: stopped"), [])
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # until the build instance runs the long step
        names = [s["name"] for s in steps(world, arn)]
        if "stopped/build/Wait" in names:
            break
        time.sleep(2)
    assert live_instances(world.ec2()) != []
    world.kiln.stop()
    world.kiln.start()
    image = world.ib().get_image(imageBuildVersionArn=arn)["image"]
    assert image["state"] == {"status": "FAILED", "reason": "kiln serve stopped during the build"}
    deadline = time.monotonic() + WAIT
    while live_instances(world.ec2()) and time.monotonic() < deadline:
        time.sleep(2)  # termination completes in the background
    assert live_instances(world.ec2()) == []
