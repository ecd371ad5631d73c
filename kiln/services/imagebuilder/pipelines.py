"""CreateImagePipeline, GetImagePipeline, ListImagePipelines, DeleteImagePipeline,
StartImagePipelineExecution, ListImagePipelineImages (docs/imagebuilder.md#pipelines): a recipe
and its configurations kept together, each execution one CreateImage. Run by hand only: a
``schedule`` is refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln.catalog import imagebuilder as cat
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import arns, images
from kiln.services.imagebuilder.configurations import DISTRIBUTION, INFRASTRUCTURE
from kiln.services.imagebuilder.recipes import KIND as RECIPE

KIND = "image-pipeline"


@dataclass(frozen=True, slots=True)
class CreateImagePipelineRequest:
    name: str | None
    image_recipe_arn: str | None
    infrastructure_configuration_arn: str | None
    distribution_configuration_arn: str | None = None
    container_recipe_arn: str | None = None
    description: str = ""
    status: str | None = None
    schedule: bool = False
    tests_enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    image_tags: dict[str, str] = field(default_factory=dict)


def create_image_pipeline(
    services: Services, caller: Caller, req: CreateImagePipelineRequest
) -> IbResourceRecord:
    name = arns.check_name(req.name)
    if req.schedule:
        raise KilnError(
            arns.INVALID,
            "The value supplied for parameter 'schedule' is not valid. Kiln runs pipelines by "
            "StartImagePipelineExecution only (docs/imagebuilder.md#pipelines).",
        )
    if req.container_recipe_arn or not req.image_recipe_arn:
        raise KilnError(
            arns.INVALID,
            "The value supplied for parameter 'imageRecipeArn' is not valid. Kiln builds AMIs "
            "from image recipes only.",
        )
    if req.status not in (None, "ENABLED", "DISABLED"):
        raise KilnError(arns.INVALID, "The value supplied for parameter 'status' is not valid.")
    arns.find(services, caller, RECIPE, req.image_recipe_arn, "imageRecipeArn")
    arns.find(
        services,
        caller,
        INFRASTRUCTURE,
        req.infrastructure_configuration_arn,
        "infrastructureConfigurationArn",
    )
    if req.distribution_configuration_arn:
        arns.find(
            services,
            caller,
            DISTRIBUTION,
            req.distribution_configuration_arn,
            "distributionConfigurationArn",
        )
    the_arn = arns.arn(caller, KIND, name)
    now = utc_now()
    body: dict[str, object] = {
        "arn": the_arn,
        "name": name,
        "description": req.description,
        "platform": "Linux",
        "enhancedImageMetadataEnabled": False,
        "imageRecipeArn": req.image_recipe_arn,
        "infrastructureConfigurationArn": req.infrastructure_configuration_arn,
        "imageTestsConfiguration": {"imageTestsEnabled": req.tests_enabled},
        "status": req.status or "ENABLED",
        "dateCreated": now,
        "dateUpdated": now,
        "tags": dict(req.tags),
        "imageTags": dict(req.image_tags),
    }
    if req.distribution_configuration_arn:
        body["distributionConfigurationArn"] = req.distribution_configuration_arn
    return arns.add(services, caller, KIND, the_arn, name, "", str(body["status"]), body)


def get_image_pipeline(
    services: Services, caller: Caller, pipeline_arn: str | None
) -> IbResourceRecord:
    return arns.find(services, caller, KIND, pipeline_arn, "imagePipelineArn")


def list_image_pipelines(services: Services, caller: Caller) -> list[IbResourceRecord]:
    with services.catalog.read() as tx:
        return cat.list_resources(tx, caller.account_id, caller.region, KIND)


def delete_image_pipeline(services: Services, caller: Caller, pipeline_arn: str | None) -> str:
    """The pipeline goes; the images it built stay."""
    record = get_image_pipeline(services, caller, pipeline_arn)
    with services.catalog.write() as tx:
        cat.delete_resource(tx, record.arn)
    return record.arn


def start_image_pipeline_execution(
    services: Services,
    caller: Caller,
    pipeline_arn: str | None,
    tags: dict[str, str],
    ports: images.BuildPorts,
) -> IbResourceRecord:
    """One CreateImage of the pipeline's recipe and configurations, its image's
    ``sourcePipelineArn`` the pipeline."""
    p = get_image_pipeline(services, caller, pipeline_arn)
    b = p.body
    tests = b.get("imageTestsConfiguration")
    image_tags = b.get("imageTags")
    req = images.CreateImageRequest(
        str(b["imageRecipeArn"]),
        str(b["infrastructureConfigurationArn"]),
        str(b["distributionConfigurationArn"]) if b.get("distributionConfigurationArn") else None,
        tests_enabled=not (isinstance(tests, dict) and tests.get("imageTestsEnabled") is False),
        tags={**(image_tags if isinstance(image_tags, dict) else {}), **tags},
        source_pipeline=(p.arn, p.name),
    )
    image = images.create_image(services, caller, req, ports)
    with services.catalog.write() as tx:
        cat.update_resource(tx, p.arn, body={**b, "dateLastRun": utc_now()})
    return image


def list_image_pipeline_images(
    services: Services, caller: Caller, pipeline_arn: str | None
) -> list[IbResourceRecord]:
    """The images the pipeline's executions made, oldest first."""
    p = get_image_pipeline(services, caller, pipeline_arn)
    with services.catalog.read() as tx:
        rows = cat.list_resources(tx, caller.account_id, caller.region, images.KIND)
    return [r for r in rows if r.state != "DELETED" and r.body.get("sourcePipelineArn") == p.arn]
