"""CreateImage, GetImage, ListImages, ListImageBuildVersions, DeleteImage and
ListWorkflowStepExecutions (docs/imagebuilder.md#images).

CreateImage records the image ``PENDING`` under its build-version ARN
(``image/NAME/x.y.z/N``) and runs one build of the recipe (kiln/services/builds/build.py) on a
thread of the server: ``BUILDING`` (the build instance, the build and validate phases, the AMI),
``TESTING`` (the test instance), ``DISTRIBUTING``, then ``AVAILABLE`` with its output AMIs, or
``FAILED`` with the reason (nothing left behind). The step log is the image's workflow
execution, ``ListWorkflowStepExecutions``."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from kiln import errors
from kiln.builder.recipe import Recipe
from kiln.catalog import builds as builds_cat
from kiln.catalog import imagebuilder as cat
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.builds.build import BuildResult, run_build
from kiln.services.builds.ports import Ec2Port, GuestConnector
from kiln.services.builds.steps import StepEvent
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import arns
from kiln.services.imagebuilder.configurations import (
    DISTRIBUTION,
    INFRASTRUCTURE,
    distribution_of,
)
from kiln.services.imagebuilder.recipes import KIND as RECIPE
from kiln.services.imagebuilder.recipes import build_recipe
from kiln.services.images.images import deregister_image
from kiln.services.instances.instances import terminate_instances

log = logging.getLogger(__name__)
KIND = "image"
#: What a build runs on, made for the caller when it starts (kiln/imagebuilder/inprocess.py).
BuildPorts = Callable[[Services, Caller], tuple[Ec2Port, GuestConnector]]
DONE = ("AVAILABLE", "FAILED", "CANCELLED", "DELETED")
_STOPPING = threading.Event()  # the server is stopping: a build's end is the next start's


def stop_builds() -> None:
    """The server is stopping (before its VMs go): a build that fails from now on records
    nothing, and ``fail_interrupted_builds`` at the next start ends it."""
    _STOPPING.set()


@dataclass(frozen=True, slots=True)
class CreateImageRequest:
    image_recipe_arn: str | None
    infrastructure_configuration_arn: str | None
    distribution_configuration_arn: str | None = None
    container_recipe_arn: str | None = None
    tests_enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    source_pipeline: tuple[str, str] | None = None  # (ARN, name): StartImagePipelineExecution


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    step_execution_id: str
    name: str
    action: str
    status: str  # RUNNING | COMPLETED | FAILED | SKIPPED
    message: str
    start_time: str
    end_time: str | None


def create_image(
    services: Services, caller: Caller, req: CreateImageRequest, ports: BuildPorts
) -> IbResourceRecord:
    if req.container_recipe_arn:
        raise KilnError(
            arns.INVALID,
            "The value supplied for parameter 'containerRecipeArn' is not valid. Kiln builds "
            "AMIs only.",
        )
    if not req.image_recipe_arn:
        raise KilnError(
            errors.ImagebuilderInvalidRequest,
            "You must specify either 'imageRecipeArn' or 'containerRecipeArn'.",
        )
    recipe_row = arns.find(services, caller, RECIPE, req.image_recipe_arn, "imageRecipeArn")
    infra = arns.find(
        services,
        caller,
        INFRASTRUCTURE,
        req.infrastructure_configuration_arn,
        "infrastructureConfigurationArn",
    )
    dist = (
        arns.find(
            services,
            caller,
            DISTRIBUTION,
            req.distribution_configuration_arn,
            "distributionConfigurationArn",
        )
        if req.distribution_configuration_arn
        else None
    )
    build_recipe(services, caller, recipe_row.body)  # its components still there
    name, version = recipe_row.name, recipe_row.version
    with services.catalog.write() as tx:
        mine = cat.count_resources(tx, caller.account_id, caller.region, KIND, name, version)
        engine = [
            b.build
            for b in builds_cat.build_versions(tx, caller.account_id, caller.region, name)
            if b.version == version
        ]
        number = max([mine, *engine]) + 1
        the_arn = arns.arn(caller, KIND, name, version, str(number))
        body: dict[str, object] = {
            "arn": the_arn,
            "type": "AMI",
            "name": name,
            "version": f"{version}/{number}",
            "platform": "Linux",
            "enhancedImageMetadataEnabled": False,
            "state": {"status": "PENDING"},
            "imageRecipe": recipe_row.body,
            "infrastructureConfiguration": infra.body,
            **({"distributionConfiguration": dist.body} if dist is not None else {}),
            "imageTestsConfiguration": {"imageTestsEnabled": req.tests_enabled},
            "dateCreated": utc_now(),
            "outputResources": {"amis": []},
            "tags": dict(req.tags),
            "buildType": "USER_INITIATED",
            "imageSource": "CUSTOM",
            "workflowExecutionId": f"wf-{secrets.token_hex(16)}",
        }
        if req.source_pipeline is not None:
            body["sourcePipelineArn"], body["sourcePipelineName"] = req.source_pipeline
        record = cat.add_resource(
            tx,
            arn=the_arn,
            account_id=caller.account_id,
            region=caller.region,
            kind=KIND,
            name=name,
            version=version,
            state="PENDING",
            body=body,
        )
    thread = threading.Thread(
        target=_run, args=(services, caller, record, ports), name=f"kiln-ib-{name}", daemon=True
    )
    thread.start()
    return record


def _set_state(services: Services, the_arn: str, status: str, reason: str | None = None) -> None:
    with services.catalog.write() as tx:
        row = cat.get_resource(tx, the_arn)
        if row is None:
            return
        body = dict(row.body)
        body["state"] = {"status": status, **({"reason": reason} if reason else {})}
        cat.update_resource(tx, the_arn, state=status, body=body)


def _run(services: Services, caller: Caller, record: IbResourceRecord, ports: BuildPorts) -> None:
    the_arn = record.arn
    body = record.body
    infra = body["infrastructureConfiguration"]
    assert isinstance(infra, Mapping)
    dist_body = body.get("distributionConfiguration")
    phase = ["BUILDING"]

    def emit(event: StepEvent) -> None:
        status = phase[0]
        made = _made(event)
        if event.kind == "info" and event.text.startswith("launching") and "(test)" in event.text:
            status = "TESTING"
        elif event.kind == "info" and event.text.startswith(("copying", "sharing")):
            status = "DISTRIBUTING"
        with services.catalog.write() as tx:
            row = cat.get_resource(tx, the_arn)
            grown = None
            if made is not None and row is not None:
                key, value = made
                grown = dict(row.body)
                grown[key] = [*_strs(grown.get(key)), value]
            cat.update_resource(
                tx,
                the_arn,
                body=grown,
                log_entry={"kind": event.kind, "text": event.text, "time": utc_now()},
            )
        if status != phase[0]:
            phase[0] = status
            _set_state(services, the_arn, status)

    try:
        _set_state(services, the_arn, "BUILDING")
        recipe_body = body["imageRecipe"]
        assert isinstance(recipe_body, Mapping)
        recipe = build_recipe(services, caller, recipe_body)
        types = infra.get("instanceTypes")
        if isinstance(types, list) and types:
            recipe = _with_type(recipe, str(types[0]))
        ec2, ssh = ports(services, caller)
        result = run_build(
            services,
            caller,
            ec2,
            ssh,
            recipe,
            distribution_of(dist_body) if isinstance(dist_body, Mapping) else None,
            keep_on_error=infra.get("terminateInstanceOnFailure") is False,
            emit=emit,
        )
    except Exception as e:  # a refusal before the build started, or a bug
        if _STOPPING.is_set():
            return
        if not isinstance(e, KilnError):
            log.warning("image %s failed", the_arn, exc_info=True)
        reason = f"{e.code.code}: {e.message}" if isinstance(e, KilnError) else repr(e)
        emit(StepEvent("failed", reason))
        _set_state(services, the_arn, "FAILED", reason)
        return
    _finish(services, caller, the_arn, result)


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _made(event: StepEvent) -> tuple[str, str] | None:
    """What the build just made, from its log (to clean up after a server stop): an instance
    (``i-… is up at``), an image (``ami-… is available``, a copy ``… is ami-…``)."""
    if event.kind != "info":
        return None
    first = event.text.split(" ", 1)[0]
    if first.startswith("i-") and " is up at " in event.text:
        return "kilnInstances", first
    if first.startswith("ami-") and " is available" in event.text:
        return "kilnImages", first
    return None


def fail_interrupted_builds(services: Services) -> list[str]:
    """At server start: every image whose build was running when the server stopped is
    ``FAILED`` ("kiln serve stopped during the build"); the instances it launched are
    terminated and the images it made deregistered (with their snapshots). Returns the ARNs."""
    _STOPPING.clear()
    with services.catalog.read() as tx:
        rows = [r for r in cat.every_resource(tx, KIND) if r.state not in DONE]
    failed: list[str] = []
    for r in rows:
        caller = Caller(r.account_id, r.region)
        instances = _strs(r.body.get("kilnInstances"))
        try:
            if instances:
                terminate_instances(services, caller, instances, False)
        except KilnError as e:
            log.warning("image %s: could not terminate %s: %s", r.arn, instances, e.message)
        for image_id in _strs(r.body.get("kilnImages")):
            try:
                deregister_image(services, caller, image_id, True)
            except KilnError as e:
                log.warning("image %s: could not deregister %s: %s", r.arn, image_id, e.message)
        _set_state(services, r.arn, "FAILED", "kiln serve stopped during the build")
        failed.append(r.arn)
    return failed


def _with_type(recipe: Recipe, instance_type: str) -> Recipe:
    return replace(recipe, instance_type=instance_type)


def _finish(services: Services, caller: Caller, the_arn: str, result: BuildResult) -> None:
    if _STOPPING.is_set() and result.state != "available":
        return
    with services.catalog.write() as tx:
        row = cat.get_resource(tx, the_arn)
        if row is None:
            return
        body = dict(row.body)
        if result.state == "available" and result.image_id:
            amis = [
                {
                    "region": caller.region,
                    "image": result.image_id,
                    "name": result.build_version,
                    "state": {"status": "AVAILABLE"},
                    "accountId": caller.account_id,
                }
            ]
            amis += [
                {
                    "region": i.region,
                    "image": i.image_id,
                    "state": {"status": "AVAILABLE"},
                    "accountId": caller.account_id,
                }
                for i in result.images
                if i.image_id != result.image_id
            ]
            body["outputResources"] = {"amis": amis}
            body["state"] = {"status": "AVAILABLE"}
            body["kilnBuildVersion"] = result.build_version
            cat.update_resource(tx, the_arn, state="AVAILABLE", body=body)
        else:
            body["state"] = {"status": "FAILED", "reason": result.reason or "the build failed"}
            if result.kept_instance_id:
                body["kilnKeptInstanceId"] = result.kept_instance_id
            cat.update_resource(tx, the_arn, state="FAILED", body=body)


def get_image(services: Services, caller: Caller, image_arn: str | None) -> IbResourceRecord:
    found = arns.find(services, caller, KIND, image_arn, "imageBuildVersionArn")
    if found.state == "DELETED":
        raise KilnError(
            errors.ImagebuilderResourceNotFound, f"The resource ARN '{image_arn}' does not exist."
        )
    return found


def _live(rows: list[IbResourceRecord]) -> list[IbResourceRecord]:
    return [r for r in rows if r.state != "DELETED"]


def list_images(services: Services, caller: Caller, owner: str | None) -> list[IbResourceRecord]:
    """The caller's images, one per recipe version (its newest build)."""
    if owner not in (None, "Self"):
        return []
    with services.catalog.read() as tx:
        rows = _live(cat.list_resources(tx, caller.account_id, caller.region, KIND))
    newest: dict[tuple[str, str], IbResourceRecord] = {}
    for r in rows:
        newest[(r.name, r.version)] = r
    return list(newest.values())


def list_image_build_versions(
    services: Services, caller: Caller, image_version_arn: str | None
) -> list[IbResourceRecord]:
    """Every build of the image version ``…:image/NAME/x.y.z``."""
    m = arns.ARN_RE.match(image_version_arn or "")
    if m is None or m["kind"] != KIND or m["rest"].count("/") != 1:
        raise KilnError(
            arns.INVALID,
            f"The value supplied for parameter 'imageVersionArn' is not valid. "
            f"'{image_version_arn}' is not an image version ARN (…:image/NAME/x.y.z).",
        )
    name, version = m["rest"].split("/")
    with services.catalog.read() as tx:
        return [
            r
            for r in _live(cat.list_resources(tx, caller.account_id, caller.region, KIND))
            if r.name.lower() == name and r.version == version
        ]


def delete_image(services: Services, caller: Caller, image_arn: str | None) -> str:
    """The image build version becomes ``DELETED`` (gone from Get and List; its AMIs stay:
    deregister them through EC2). A build still running is refused."""
    record = get_image(services, caller, image_arn)
    if record.state not in DONE:
        raise KilnError(
            errors.ImagebuilderInvalidRequest,
            f"The image {record.arn} cannot be deleted while it is {record.state}.",
        )
    _set_state(services, record.arn, "DELETED")  # kept, so that its build number is never reused
    return record.arn


def _steps(record: IbResourceRecord) -> list[WorkflowStep]:
    steps: list[WorkflowStep] = []
    open_: dict[str, int] = {}
    for i, entry in enumerate(record.log):
        kind, text, when = str(entry["kind"]), str(entry["text"]), str(entry["time"])
        if kind in ("step", "skipped"):
            label, _, rest = text.partition(" (")
            step = WorkflowStep(
                f"step-{i:06d}",
                label,
                rest.rstrip(")") if kind == "step" else "",
                "RUNNING" if kind == "step" else "SKIPPED",
                "" if kind == "step" else "if: false",
                when,
                None if kind == "step" else when,
            )
            if kind == "step":
                open_[label] = len(steps)
            steps.append(step)
        elif kind in ("done", "failed"):
            label, _, why = text.partition(": ")
            at = open_.pop(label, None)
            if at is None:
                continue
            s = steps[at]
            steps[at] = WorkflowStep(
                s.step_execution_id,
                s.name,
                s.action,
                "COMPLETED" if kind == "done" else "FAILED",
                why,
                s.start_time,
                when,
            )
    return steps


def list_workflow_step_executions(
    services: Services, caller: Caller, workflow_execution_id: str | None
) -> tuple[IbResourceRecord, list[WorkflowStep]]:
    """The component steps the build ran; the id is ListWorkflowExecutions'."""
    with services.catalog.read() as tx:
        rows = _live(cat.list_resources(tx, caller.account_id, caller.region, KIND))
    for r in rows:
        if r.body.get("workflowExecutionId") == workflow_execution_id:
            return r, _steps(r)
    raise KilnError(
        errors.ImagebuilderResourceNotFound,
        f"The workflow execution '{workflow_execution_id}' does not exist.",
    )


def list_workflow_executions(
    services: Services, caller: Caller, image_arn: str | None
) -> tuple[IbResourceRecord, list[WorkflowStep]]:
    """The image's one workflow execution (its build) and its steps."""
    record = get_image(services, caller, image_arn)
    return record, _steps(record)
