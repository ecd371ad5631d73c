"""The Image Builder API with boto3's unmodified ``imagebuilder`` client against a live
``kiln serve``: components (a bad document refused naming its line), recipes, configurations,
and the refusals; docs/imagebuilder.md. The builds with real VMs: test_api_imagebuilder_vms.py."""

from __future__ import annotations

from typing import Any

import pytest
from api_live import ApiWorld, Creds
from botocore.exceptions import ClientError

REGION = "us-east-1"
HELLO = """\
name: hello
description: writes a file
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
"""


def ib(api: ApiWorld, creds: Creds | None = None) -> Any:
    return api.kiln.client(creds or api.owner, REGION, "imagebuilder")


def code(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = e.value.response["Error"]
    return err["Code"], err["Message"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def component(api: ApiWorld, name: str, data: str = HELLO, version: str = "1.0.0") -> str:
    return str(
        ib(api).create_component(name=name, semanticVersion=version, platform="Linux", data=data)[
            "componentBuildVersionArn"
        ]
    )


def test_a_component_is_stored_under_its_arn_and_listed(api: ApiWorld) -> None:
    arn = component(api, "Hello")
    account = api.owner.account_id
    assert arn == f"arn:aws:imagebuilder:{REGION}:{account}:component/hello/1.0.0/1"
    got = ib(api).get_component(componentBuildVersionArn=arn)["component"]
    assert got["data"] == HELLO and got["version"] == "1.0.0" and got["platform"] == "Linux"
    assert got["parameters"] == [
        {"name": "Greeting", "type": "String", "defaultValue": ["hi"], "description": ""}
    ]
    assert got["owner"] == account and got["type"] == "BUILD"
    listed = ib(api).list_components(owner="Self")["componentVersionList"]
    assert f"arn:aws:imagebuilder:{REGION}:{account}:component/hello/1.0.0" in [
        c["arn"] for c in listed
    ]
    # another account sees nothing of it
    with pytest.raises(ClientError) as e:
        ib(api, api.stranger).get_component(componentBuildVersionArn=arn)
    assert code(e)[0] == "ResourceNotFoundException" and code(e)[2] == 404
    assert ib(api, api.stranger).list_components(owner="Self")["componentVersionList"] == []
    # the same version again is refused
    with pytest.raises(ClientError) as e:
        component(api, "Hello")
    assert code(e)[:2] == (
        "ResourceAlreadyExistsException",
        f"The resource ARN '{arn}' already exists.",
    )


def test_a_bad_component_document_is_refused_naming_its_line(api: ApiWorld) -> None:
    bad = HELLO.replace("action: CreateFile", "action: MakeFile")
    with pytest.raises(ClientError) as e:
        component(api, "bad-action", bad)
    c, message, status = code(e)
    assert (c, status) == ("InvalidParameterValueException", 400)
    assert message.startswith(
        "data:12: phases.build.steps.Write.action: unknown action MakeFile"
    ), message
    with pytest.raises(ClientError) as e:
        component(api, "bad-yaml", HELLO.replace("  - name: build", "  - name: [build"))
    assert code(e)[0] == "InvalidParameterValueException"
    assert code(e)[1].startswith("data:10: (document): not valid YAML"), code(e)[1]
    with pytest.raises(ClientError) as e:
        component(api, "bad-version", HELLO, version="1.0")
    assert code(e)[0] == "InvalidParameterValueException"
    # nothing was stored
    names = [c["name"] for c in ib(api).list_components()["componentVersionList"]]
    assert not [n for n in names if n.startswith("bad-")]


def test_a_recipe_and_configurations(api: ApiWorld) -> None:
    arn = component(api, "recipe-part")
    client = ib(api)
    recipe = client.create_image_recipe(
        name="web",
        semanticVersion="2.0.0",
        parentImage="kiln/micro",
        components=[{"componentArn": arn, "parameters": [{"name": "Greeting", "value": ["yo"]}]}],
    )["imageRecipeArn"]
    account = api.owner.account_id
    assert recipe == f"arn:aws:imagebuilder:{REGION}:{account}:image-recipe/web/2.0.0"
    got = client.get_image_recipe(imageRecipeArn=recipe)["imageRecipe"]
    assert got["parentImage"] == "kiln/micro" and got["components"][0]["componentArn"] == arn
    # a parameter the component does not have is refused, and so is a component that is not there
    with pytest.raises(ClientError) as e:
        client.create_image_recipe(
            name="web2",
            semanticVersion="1.0.0",
            parentImage="kiln/micro",
            components=[{"componentArn": arn, "parameters": [{"name": "Nope", "value": ["x"]}]}],
        )
    assert code(e)[0] == "InvalidParameterValueException"
    assert "component hello has no parameter Nope" in code(e)[1]
    with pytest.raises(ClientError) as e:
        client.create_image_recipe(
            name="web3",
            semanticVersion="1.0.0",
            parentImage="kiln/micro",
            components=[{"componentArn": arn.replace("recipe-part", "missing")}],
        )
    assert code(e)[0] == "ResourceNotFoundException"
    infra = client.create_infrastructure_configuration(
        name="small", instanceProfileName="kiln", instanceTypes=["t2.micro"]
    )["infrastructureConfigurationArn"]
    assert infra.endswith(f":{account}:infrastructure-configuration/small")
    dist = client.create_distribution_configuration(
        name="here", distributions=[{"region": REGION}]
    )["distributionConfigurationArn"]
    assert dist.endswith(f":{account}:distribution-configuration/here")
    with pytest.raises(ClientError) as e:
        client.create_distribution_configuration(
            name="nowhere", distributions=[{"region": "xx-nowhere-1"}]
        )
    assert code(e)[0] == "InvalidParameterValueException"
    # CreateImage with a configuration that is not there starts nothing
    with pytest.raises(ClientError) as e:
        client.create_image(
            imageRecipeArn=recipe, infrastructureConfigurationArn=infra + "-missing"
        )
    assert code(e)[0] == "ResourceNotFoundException"
    assert client.list_images(owner="Self")["imageVersionList"] == []
    with pytest.raises(ClientError) as e:
        client.get_image(
            imageBuildVersionArn=f"arn:aws:imagebuilder:{REGION}:{account}:image/web/2.0.0/1"
        )
    assert code(e)[0] == "ResourceNotFoundException"


def test_a_pipeline_keeps_a_recipe_and_its_configurations(api: ApiWorld) -> None:
    client = ib(api)
    arn = component(api, "pipe-part")
    recipe = client.create_image_recipe(
        name="piped",
        semanticVersion="1.0.0",
        parentImage="kiln/micro",
        components=[{"componentArn": arn}],
    )["imageRecipeArn"]
    infra = client.create_infrastructure_configuration(name="pipe-infra", instanceProfileName="k")[
        "infrastructureConfigurationArn"
    ]
    with pytest.raises(ClientError) as e:
        client.create_image_pipeline(
            name="nightly",
            imageRecipeArn=recipe,
            infrastructureConfigurationArn=infra,
            schedule={"scheduleExpression": "cron(0 0 * * ? *)"},
        )
    assert code(e)[0] == "InvalidParameterValueException" and "schedule" in code(e)[1]
    pipe = client.create_image_pipeline(
        name="by-hand", imageRecipeArn=recipe, infrastructureConfigurationArn=infra
    )["imagePipelineArn"]
    assert pipe.endswith(f":{api.owner.account_id}:image-pipeline/by-hand")
    got = client.get_image_pipeline(imagePipelineArn=pipe)["imagePipeline"]
    assert got["imageRecipeArn"] == recipe and got["status"] == "ENABLED"
    assert [p["arn"] for p in client.list_image_pipelines()["imagePipelineList"]] == [pipe]
    assert client.list_image_pipeline_images(imagePipelineArn=pipe)["imageSummaryList"] == []
    client.delete_image_pipeline(imagePipelineArn=pipe)
    with pytest.raises(ClientError) as e:
        client.get_image_pipeline(imagePipelineArn=pipe)
    assert code(e)[0] == "ResourceNotFoundException"


def test_the_components_kiln_ships_are_amazon_managed_components(api: ApiWorld) -> None:
    client = ib(api)
    shipped = client.list_components(owner="Amazon")["componentVersionList"]
    names = {c["name"] for c in shipped}
    assert {"kiln-harden-ssh", "kiln-cleanup", "kiln-firewall"} <= names
    arn = f"arn:aws:imagebuilder:{REGION}:aws:component/kiln-harden-ssh/1.0.0/1"
    got = client.get_component(componentBuildVersionArn=arn)["component"]
    assert got["owner"] == "Amazon" and "phases" in got["data"]
    recipe = client.create_image_recipe(
        name="hardened",
        semanticVersion="1.0.0",
        parentImage="kiln/micro",
        components=[
            {"componentArn": f"arn:aws:imagebuilder:{REGION}:aws:component/kiln-harden-ssh/x.x.x"}
        ],
    )["imageRecipeArn"]
    assert recipe.endswith(":image-recipe/hardened/1.0.0")
    with pytest.raises(ClientError) as e:
        client.get_component(
            componentBuildVersionArn=f"arn:aws:imagebuilder:{REGION}:aws:component/kiln-nope/1.0.0/1"
        )
    assert code(e)[0] == "ResourceNotFoundException"
