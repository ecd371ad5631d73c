"""Image Builder handlers: params -> the rules in kiln/services/imagebuilder -> the output shape."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.model import Shape

from kiln.aws.context import RequestContext
from kiln.aws.wire import Params
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.imagebuilder.inprocess import InProcessEc2
from kiln.imagebuilder.service import model
from kiln.services.builds.ports import Ec2Port, GuestConnector
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import components, configurations, images, pipelines, recipes


def _services(ctx: RequestContext) -> Services:
    if not isinstance(ctx.state, Services):
        raise TypeError("the imagebuilder app was built without kiln.services.context.Services")
    return ctx.state


def _caller(ctx: RequestContext) -> Caller:
    return Caller(ctx.account_id, ctx.region)


def _str(params: Params, key: str) -> str | None:
    v = params.get(key)
    return v if isinstance(v, str) else None


def _strs(params: Params, key: str) -> tuple[str, ...]:
    v = params.get(key)
    return tuple(str(x) for x in v) if isinstance(v, list) else ()


def _dicts(params: Params, key: str) -> tuple[Mapping[str, object], ...]:
    v = params.get(key)
    return tuple(x for x in v if isinstance(x, Mapping)) if isinstance(v, list) else ()


def _tags(params: Params, key: str = "tags") -> dict[str, str]:
    v = params.get(key)
    return {str(k): str(x) for k, x in v.items()} if isinstance(v, Mapping) else {}


def _shaped(shape: Shape, value: object) -> object:
    """``value`` with only the members ``shape`` has (the stored bodies carry Kiln's own)."""
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {
            k: _shaped(members[k], v) for k, v in value.items() if k in members and v is not None
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [_shaped(shape.member, v) for v in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {k: _shaped(shape.value, v) for k, v in value.items()}
    return value


def _out(shape_name: str, body: Mapping[str, object]) -> object:
    return _shaped(model().shape_for(shape_name), body)


def _summary(shape_name: str, rows: list[IbResourceRecord]) -> list[object]:
    return [_out(shape_name, r.body) for r in rows]


def create_component(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = components.CreateComponentRequest(
        name=_str(params, "name"),
        semantic_version=_str(params, "semanticVersion"),
        platform=_str(params, "platform"),
        data=_str(params, "data"),
        uri=_str(params, "uri"),
        description=_str(params, "description") or "",
        change_description=_str(params, "changeDescription") or "",
        kms_key_id=_str(params, "kmsKeyId"),
        tags=_tags(params),
        supported_os_versions=_strs(params, "supportedOsVersions"),
    )
    r = components.create_component(_services(ctx), _caller(ctx), req)
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "componentBuildVersionArn": r.arn,
    }


def get_component(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r = components.get_component(
        _services(ctx), _caller(ctx), _str(params, "componentBuildVersionArn")
    )
    return {"requestId": ctx.request_id, "component": _out("Component", r.body)}


def list_components(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rows = components.list_components(_services(ctx), _caller(ctx), _str(params, "owner"))
    out = [
        {**r.body, "arn": str(r.body["arn"]).rsplit("/", 1)[0]} for r in rows
    ]  # a ComponentVersion's ARN has no build number
    return {
        "requestId": ctx.request_id,
        "componentVersionList": [_out("ComponentVersion", b) for b in out],
    }


def create_image_recipe(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = recipes.CreateImageRecipeRequest(
        name=_str(params, "name"),
        semantic_version=_str(params, "semanticVersion"),
        parent_image=_str(params, "parentImage"),
        components=_dicts(params, "components"),
        description=_str(params, "description") or "",
        block_device_mappings=_dicts(params, "blockDeviceMappings"),
        tags=_tags(params),
        ami_tags=_tags(params, "amiTags"),
        working_directory=_str(params, "workingDirectory"),
    )
    r = recipes.create_image_recipe(_services(ctx), _caller(ctx), req)
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "imageRecipeArn": r.arn,
    }


def get_image_recipe(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r = recipes.get_image_recipe(_services(ctx), _caller(ctx), _str(params, "imageRecipeArn"))
    return {"requestId": ctx.request_id, "imageRecipe": _out("ImageRecipe", r.body)}


def create_distribution_configuration(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = configurations.CreateDistributionConfigurationRequest(
        name=_str(params, "name"),
        distributions=_dicts(params, "distributions"),
        description=_str(params, "description") or "",
        tags=_tags(params),
    )
    r = configurations.create_distribution_configuration(_services(ctx), _caller(ctx), req)
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "distributionConfigurationArn": r.arn,
    }


def create_infrastructure_configuration(
    ctx: RequestContext, params: Params
) -> Mapping[str, object]:
    terminate = params.get("terminateInstanceOnFailure")
    req = configurations.CreateInfrastructureConfigurationRequest(
        name=_str(params, "name"),
        instance_profile_name=_str(params, "instanceProfileName"),
        instance_types=_strs(params, "instanceTypes"),
        key_pair=_str(params, "keyPair"),
        terminate_instance_on_failure=terminate is not False,
        security_group_ids=_strs(params, "securityGroupIds"),
        subnet_id=_str(params, "subnetId"),
        description=_str(params, "description") or "",
        tags=_tags(params),
        resource_tags=_tags(params, "resourceTags"),
    )
    r = configurations.create_infrastructure_configuration(_services(ctx), _caller(ctx), req)
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "infrastructureConfigurationArn": r.arn,
    }


def _ports(ctx: RequestContext) -> images.BuildPorts:
    key_id = ctx.access_key_id

    def ports(services: Services, caller: Caller) -> tuple[Ec2Port, GuestConnector]:
        from kiln.buildports.ssh import SshConnector

        return InProcessEc2(services, caller, key_id), SshConnector()

    return ports


def create_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    tests = params.get("imageTestsConfiguration")
    enabled = not (isinstance(tests, Mapping) and tests.get("imageTestsEnabled") is False)
    req = images.CreateImageRequest(
        image_recipe_arn=_str(params, "imageRecipeArn"),
        infrastructure_configuration_arn=_str(params, "infrastructureConfigurationArn"),
        distribution_configuration_arn=_str(params, "distributionConfigurationArn"),
        container_recipe_arn=_str(params, "containerRecipeArn"),
        tests_enabled=enabled,
        tags=_tags(params),
    )
    r = images.create_image(_services(ctx), _caller(ctx), req, _ports(ctx))
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "imageBuildVersionArn": r.arn,
    }


def get_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r = images.get_image(_services(ctx), _caller(ctx), _str(params, "imageBuildVersionArn"))
    return {"requestId": ctx.request_id, "image": _out("Image", r.body)}


def list_images(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rows = images.list_images(_services(ctx), _caller(ctx), _str(params, "owner"))
    out = [{**r.body, "arn": str(r.body["arn"]).rsplit("/", 1)[0]} for r in rows]
    for b in out:
        b["version"] = str(b["version"]).split("/")[0]
    return {"requestId": ctx.request_id, "imageVersionList": [_out("ImageVersion", b) for b in out]}


def list_image_build_versions(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rows = images.list_image_build_versions(
        _services(ctx), _caller(ctx), _str(params, "imageVersionArn")
    )
    return {"requestId": ctx.request_id, "imageSummaryList": _summary("ImageSummary", rows)}


def delete_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    arn = images.delete_image(_services(ctx), _caller(ctx), _str(params, "imageBuildVersionArn"))
    return {"requestId": ctx.request_id, "imageBuildVersionArn": arn}


def _step_out(s: images.WorkflowStep) -> dict[str, object]:
    return {
        "stepExecutionId": s.step_execution_id,
        "name": s.name,
        "description": s.action,
        "action": "ExecuteComponent",
        "status": s.status,
        "rollbackStatus": "SKIPPED",
        "message": s.message or None,
        "startTime": s.start_time,
        "endTime": s.end_time,
    }


def _execution_status(state: str) -> str:
    return {"AVAILABLE": "COMPLETED", "FAILED": "FAILED", "PENDING": "PENDING"}.get(
        state, "RUNNING"
    )


def list_workflow_executions(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r, steps = images.list_workflow_executions(
        _services(ctx), _caller(ctx), _str(params, "imageBuildVersionArn")
    )
    reason = r.body.get("state")
    message = reason.get("reason") if isinstance(reason, Mapping) else None
    execution = {
        "workflowBuildVersionArn": "arn:aws:imagebuilder:"
        f"{ctx.region}:aws:workflow/build/build-image/1.0.0/1",
        "workflowExecutionId": r.body["workflowExecutionId"],
        "type": "BUILD",
        "status": _execution_status(r.state),
        "message": message,
        "totalStepCount": len(steps),
        "totalStepsSucceeded": sum(s.status == "COMPLETED" for s in steps),
        "totalStepsFailed": sum(s.status == "FAILED" for s in steps),
        "totalStepsSkipped": sum(s.status == "SKIPPED" for s in steps),
        "startTime": r.created_at,
    }
    return {
        "requestId": ctx.request_id,
        "imageBuildVersionArn": r.arn,
        "workflowExecutions": [execution],
    }


def list_workflow_step_executions(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r, steps = images.list_workflow_step_executions(
        _services(ctx), _caller(ctx), _str(params, "workflowExecutionId")
    )
    return {
        "requestId": ctx.request_id,
        "workflowBuildVersionArn": "arn:aws:imagebuilder:"
        f"{ctx.region}:aws:workflow/build/build-image/1.0.0/1",
        "workflowExecutionId": r.body["workflowExecutionId"],
        "imageBuildVersionArn": r.arn,
        "steps": [_step_out(s) for s in steps],
    }


def create_image_pipeline(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    tests = params.get("imageTestsConfiguration")
    req = pipelines.CreateImagePipelineRequest(
        name=_str(params, "name"),
        image_recipe_arn=_str(params, "imageRecipeArn"),
        infrastructure_configuration_arn=_str(params, "infrastructureConfigurationArn"),
        distribution_configuration_arn=_str(params, "distributionConfigurationArn"),
        container_recipe_arn=_str(params, "containerRecipeArn"),
        description=_str(params, "description") or "",
        status=_str(params, "status"),
        schedule=bool(params.get("schedule")),
        tests_enabled=not (isinstance(tests, Mapping) and tests.get("imageTestsEnabled") is False),
        tags=_tags(params),
        image_tags=_tags(params, "imageTags"),
    )
    r = pipelines.create_image_pipeline(_services(ctx), _caller(ctx), req)
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "imagePipelineArn": r.arn,
    }


def get_image_pipeline(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r = pipelines.get_image_pipeline(_services(ctx), _caller(ctx), _str(params, "imagePipelineArn"))
    return {"requestId": ctx.request_id, "imagePipeline": _out("ImagePipeline", r.body)}


def list_image_pipelines(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rows = pipelines.list_image_pipelines(_services(ctx), _caller(ctx))
    return {"requestId": ctx.request_id, "imagePipelineList": _summary("ImagePipeline", rows)}


def delete_image_pipeline(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    arn = pipelines.delete_image_pipeline(
        _services(ctx), _caller(ctx), _str(params, "imagePipelineArn")
    )
    return {"requestId": ctx.request_id, "imagePipelineArn": arn}


def start_image_pipeline_execution(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    r = pipelines.start_image_pipeline_execution(
        _services(ctx), _caller(ctx), _str(params, "imagePipelineArn"), _tags(params), _ports(ctx)
    )
    return {
        "requestId": ctx.request_id,
        "clientToken": _str(params, "clientToken"),
        "imageBuildVersionArn": r.arn,
    }


def list_image_pipeline_images(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rows = pipelines.list_image_pipeline_images(
        _services(ctx), _caller(ctx), _str(params, "imagePipelineArn")
    )
    return {"requestId": ctx.request_id, "imageSummaryList": _summary("ImageSummary", rows)}
