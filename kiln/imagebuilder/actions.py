"""The supported Image Builder actions: exactly the keys of ACTIONS. Each maps to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import Handler
from kiln.imagebuilder import handlers

ACTIONS: Mapping[str, Handler] = {
    "CreateComponent": handlers.create_component,
    "GetComponent": handlers.get_component,
    "ListComponents": handlers.list_components,
    "CreateImageRecipe": handlers.create_image_recipe,
    "GetImageRecipe": handlers.get_image_recipe,
    "CreateDistributionConfiguration": handlers.create_distribution_configuration,
    "CreateInfrastructureConfiguration": handlers.create_infrastructure_configuration,
    "CreateImage": handlers.create_image,
    "GetImage": handlers.get_image,
    "ListImages": handlers.list_images,
    "ListImageBuildVersions": handlers.list_image_build_versions,
    "DeleteImage": handlers.delete_image,
    "ListWorkflowExecutions": handlers.list_workflow_executions,
    "ListWorkflowStepExecutions": handlers.list_workflow_step_executions,
    "CreateImagePipeline": handlers.create_image_pipeline,
    "GetImagePipeline": handlers.get_image_pipeline,
    "ListImagePipelines": handlers.list_image_pipelines,
    "DeleteImagePipeline": handlers.delete_image_pipeline,
    "StartImagePipelineExecution": handlers.start_image_pipeline_execution,
    "ListImagePipelineImages": handlers.list_image_pipeline_images,
}
