"""Image Builder rules without HTTP, on SQLite and PostgreSQL: components checked whole,
recipes binding their components' parameters, the ARNs, and a CreateImage whose parent is
nowhere ending FAILED with nothing made (docs/imagebuilder.md)."""

from __future__ import annotations

import time

import pytest
from services_fixtures import World

from kiln.errors import KilnError
from kiln.imagebuilder.inprocess import InProcessEc2
from kiln.services.builds.ports import Ec2Port, GuestConnector
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import components, configurations, images, pipelines, recipes

DOC = """\
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


def code(exc: pytest.ExceptionInfo[KilnError]) -> str:
    return exc.value.code.code


def component(world: World, doc: str = DOC, name: str = "hello") -> str:
    req = components.CreateComponentRequest(name, "1.0.0", "Linux", doc)
    return components.create_component(world.svc, world.owner, req).arn


def recipe(world: World, arn: str, who: str | None = "you", parent: str = "kiln/micro") -> str:
    params = [{"name": "Who", "value": [who]}] if who is not None else []
    req = recipes.CreateImageRecipeRequest(
        "web", "1.0.0", parent, ({"componentArn": arn, "parameters": params},)
    )
    return recipes.create_image_recipe(world.svc, world.owner, req).arn


def test_a_component_is_parsed_whole_and_refused_with_its_line(world: World) -> None:
    arn = component(world)
    assert arn == (
        f"arn:aws:imagebuilder:{world.owner.region}:{world.owner.account_id}:"
        "component/hello/1.0.0/1"
    )
    with pytest.raises(KilnError) as e:
        component(world, DOC.replace("{{ Who }}", "{{ Whom }}"), "other")
    assert code(e) == "InvalidParameterValue"  # spelled InvalidParameterValueException
    assert e.value.message.startswith("data:12: phases.build.steps.Say.inputs"), e.value.message
    assert "Whom" in e.value.message
    assert [c.name for c in components.list_components(world.svc, world.owner, None)] == ["hello"]
    assert components.list_components(world.svc, world.stranger, None) == []


def test_a_recipe_binds_its_components_parameters(world: World) -> None:
    arn = component(world)
    with pytest.raises(KilnError) as e:
        recipe(world, arn, who=None)
    assert "component hello needs parameter Who" in e.value.message
    made = recipe(world, arn)
    body = recipes.get_image_recipe(world.svc, world.owner, made).body
    built = recipes.build_recipe(world.svc, world.owner, body)
    assert built.components[0].parameters == {"Who": "you"}
    with pytest.raises(KilnError) as e:
        recipes.get_image_recipe(world.svc, world.stranger, made)
    assert code(e) == "ResourceNotFoundException"


def _ports(services: Services, caller: Caller) -> tuple[Ec2Port, GuestConnector]:
    return InProcessEc2(services, caller, ""), _NoGuest()


class _NoGuest:
    def connect(self, host: str, port: int, private_key: str, timeout_s: float) -> object:
        raise AssertionError("no instance is launched when the parent is nowhere")


def test_create_image_of_a_parent_that_is_nowhere_ends_failed(world: World) -> None:
    made = recipe(world, component(world), parent="no-such-image")
    infra = configurations.create_infrastructure_configuration(
        world.svc,
        world.owner,
        configurations.CreateInfrastructureConfigurationRequest("small", "kiln"),
    ).arn
    image = images.create_image(
        world.svc,
        world.owner,
        images.CreateImageRequest(made, infra),
        _ports,  # type: ignore[arg-type]
    )
    assert image.arn.endswith(":image/web/1.0.0/1") and image.state == "PENDING"
    for _ in range(600):  # the build's thread; a guard, not a speed requirement
        now = images.get_image(world.svc, world.owner, image.arn)
        if now.state in images.DONE:
            break
        time.sleep(0.1)
    assert now.state == "FAILED"
    state = now.body["state"]
    assert isinstance(state, dict) and "InvalidAMIID.NotFound" in state["reason"]
    assert now.body["outputResources"] == {"amis": []}
    # a finished build can be deleted; the next CreateImage of the version is /2
    images.delete_image(world.svc, world.owner, image.arn)
    again = images.create_image(
        world.svc,
        world.owner,
        images.CreateImageRequest(made, infra),
        _ports,  # type: ignore[arg-type]
    )
    assert again.arn.endswith(":image/web/1.0.0/2")


def test_a_pipeline_execution_is_one_create_image_of_its_recipe(world: World) -> None:
    made = recipe(world, component(world), parent="no-such-image")
    infra = configurations.create_infrastructure_configuration(
        world.svc,
        world.owner,
        configurations.CreateInfrastructureConfigurationRequest("small", "kiln"),
    ).arn
    pipe = pipelines.create_image_pipeline(
        world.svc, world.owner, pipelines.CreateImagePipelineRequest("nightly", made, infra)
    ).arn
    image = pipelines.start_image_pipeline_execution(
        world.svc,
        world.owner,
        pipe,
        {},
        _ports,  # type: ignore[arg-type]
    )
    assert image.body["sourcePipelineArn"] == pipe and image.body["sourcePipelineName"] == "nightly"
    listed = pipelines.list_image_pipeline_images(world.svc, world.owner, pipe)
    assert [r.arn for r in listed] == [image.arn]
    for _ in range(600):  # the build's thread; a guard, not a speed requirement
        if images.get_image(world.svc, world.owner, image.arn).state in images.DONE:
            break
        time.sleep(0.1)
    assert images.get_image(world.svc, world.owner, image.arn).state == "FAILED"
    assert "dateLastRun" in pipelines.get_image_pipeline(world.svc, world.owner, pipe).body
