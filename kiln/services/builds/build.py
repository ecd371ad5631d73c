"""``kiln build``: one build of a recipe (docs/builds.md#running).

1. The parent resolved (parents.py), the next build number taken (``building``).
2. A key pair and a security group open on tcp/22, both the build's own.
3. The parent launched; over SSH each component's build phase, then each one's validate.
4. The instance stopped, CreateImage (incremental), the instance terminated.
5. The new image launched; each component's test phase; that instance terminated.
6. Distribution: CopyImage to each region, tags, launch permissions, deprecation.
7. The build version ``available`` with its image.

A failing step (or anything else) stops the build: its instances are terminated (the build
instance kept with ``keep_on_error``), the image and its copies deregistered, the version
``failed`` with the reason and the log."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from kiln.builder.recipe import Distribution, Recipe
from kiln.catalog import builds as cat
from kiln.errors import KilnError
from kiln.services.builds.parents import resolve_parent
from kiln.services.builds.ports import Ec2Port, GuestConnector, GuestShell, Launched, LaunchRequest
from kiln.services.builds.steps import Emit, StepEvent, StepFailed, run_phase
from kiln.services.context import Caller, Services

log = logging.getLogger(__name__)
SSH_WAIT_S = 300.0  # a guard against a guest that never answers, not a speed requirement


@dataclass(frozen=True, slots=True)
class DistributedImage:
    region: str
    image_id: str


@dataclass(frozen=True, slots=True)
class BuildResult:
    recipe: str
    version: str
    build: int
    state: str  # available | failed
    image_id: str | None
    parent_image_id: str | None
    images: tuple[DistributedImage, ...]
    reason: str | None
    exit_code: int | None  # a failed step's
    kept_instance_id: str | None  # --on-error keep
    kept_key: str | None  # the kept instance's private key (PEM)

    @property
    def build_version(self) -> str:
        return f"{self.recipe}/{self.version}/{self.build}"


@dataclass
class _Build:
    """One build's parts and what it has made so far (to clean up on failure)."""

    ec2: Ec2Port
    ssh: GuestConnector
    recipe: Recipe
    label: str
    access: str  # the key pair's and security group's name
    key: str
    group: str
    emit: Emit
    instances: list[str] = field(default_factory=list)
    images: list[DistributedImage] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def note(self, event: StepEvent) -> None:
        self.log.append(f"[{event.kind}] {event.text}")
        self.emit(event)


def run_build(
    services: Services,
    caller: Caller,
    ec2: Ec2Port,
    ssh: GuestConnector,
    recipe: Recipe,
    distribution: Distribution | None,
    *,
    keep_on_error: bool,
    emit: Emit,
) -> BuildResult:
    parent = resolve_parent(services, caller, ec2, recipe.parent, recipe.name)
    with services.catalog.write() as tx:
        version = cat.start_build_version(
            tx, caller.account_id, caller.region, recipe.name, recipe.version
        )
    label = f"{recipe.name}/{recipe.version}/{version.build}"
    access = f"kiln-build-{recipe.name}-{secrets.token_hex(4)}"
    b = _Build(ec2, ssh, recipe, label, access, "", "", emit)
    b.note(StepEvent("info", f"build {label} from {parent}"))
    kept: str | None = None
    try:
        b.key, b.group = ec2.create_build_access(access)
        image_id = _build_and_test(b, parent)
        if distribution is not None:
            _distribute(b, image_id, distribution)
    except Exception as e:
        exit_code = e.exit_code if isinstance(e, StepFailed) else None
        reason = _reason(e)
        b.note(StepEvent("failed", f"build {label} failed: {reason}"))
        if keep_on_error and b.instances and isinstance(e, StepFailed):
            kept = b.instances[-1]
            b.note(StepEvent("info", f"keeping {kept} for debugging (--on-error keep)"))
        _clean_up(b, kept)
        if kept is None:
            ec2.delete_build_access(access, b.group)
        if not isinstance(e, StepFailed | KilnError):
            log.warning("build %s failed", label, exc_info=True)
        with services.catalog.write() as tx:
            cat.finish_build_version(
                tx,
                version,
                state="failed",
                image_id=None,
                parent_image_id=parent,
                reason=reason,
                log="\n".join(b.log),
            )
        return BuildResult(
            recipe.name,
            recipe.version,
            version.build,
            "failed",
            None,
            parent,
            (),
            reason,
            exit_code,
            kept,
            b.key if kept else None,
        )
    ec2.delete_build_access(access, b.group)
    b.note(StepEvent("info", f"build {label} is {image_id}"))
    with services.catalog.write() as tx:
        cat.finish_build_version(
            tx,
            version,
            state="available",
            image_id=image_id,
            parent_image_id=parent,
            reason=None,
            log="\n".join(b.log),
        )
    return BuildResult(
        recipe.name,
        recipe.version,
        version.build,
        "available",
        image_id,
        parent,
        tuple(b.images),
        None,
        None,
        None,
        None,
    )


def _reason(e: Exception) -> str:
    if isinstance(e, StepFailed):
        return f"{e}" + (f": {e.tail}" if e.tail else "")
    if isinstance(e, KilnError):
        return f"{e.code.code}: {e.message}"
    return f"{type(e).__name__}: {e}"


def _launch(b: _Build, image_id: str, role: str) -> tuple[Launched, GuestShell]:
    b.note(StepEvent("info", f"launching {image_id} ({role})"))
    launched = b.ec2.launch(
        LaunchRequest(
            image_id,
            b.recipe.instance_type,
            b.access,
            b.group,
            tuple(
                (d.device_name, d.volume_size, d.volume_type, d.delete_on_termination)
                for d in b.recipe.block_devices
            ),
            {"Name": f"{b.label} {role}", "kiln:build": b.label},
        )
    )
    b.instances.append(launched.instance_id)
    b.note(StepEvent("info", f"{launched.instance_id} is up at {launched.host}:{launched.port}"))
    return launched, b.ssh.connect(launched.host, launched.port, b.key, SSH_WAIT_S)


def _build_and_test(b: _Build, parent: str) -> str:
    outputs: list[dict[str, str]] = [{} for _ in b.recipe.components]
    launched, shell = _launch(b, parent, "build")
    try:
        for phase in ("build", "validate"):
            for rc, out in zip(b.recipe.components, outputs, strict=True):
                run_phase(shell, rc.component, phase, rc.parameters, out, b.note)
    finally:
        shell.close()
    b.note(StepEvent("info", f"stopping {launched.instance_id}"))
    b.ec2.stop(launched.instance_id)
    b.note(StepEvent("info", "creating the image"))
    description = b.recipe.description or f"kiln build {b.label}"
    image_id = b.ec2.create_image(launched.instance_id, b.label, description)
    b.images.append(DistributedImage(b.ec2.region, image_id))
    b.ec2.tag(image_id, b.ec2.region, {**b.recipe.tags, "kiln:build": b.label})
    b.ec2.terminate([launched.instance_id])
    b.instances.remove(launched.instance_id)
    b.note(StepEvent("info", f"{image_id} is available; testing it"))
    tested, shell = _launch(b, image_id, "test")
    try:
        for rc, out in zip(b.recipe.components, outputs, strict=True):
            run_phase(shell, rc.component, "test", rc.parameters, out, b.note)
    finally:
        shell.close()
    b.ec2.terminate([tested.instance_id])
    b.instances.remove(tested.instance_id)
    return image_id


def _distribute(b: _Build, image_id: str, distribution: Distribution) -> None:
    for d in distribution.regions:
        name = d.name or b.label
        description = d.description or b.recipe.description or f"kiln build {b.label}"
        if d.region == b.ec2.region and d.name is None and d.kms_key_id is None:
            target = image_id
        else:
            b.note(StepEvent("info", f"copying {image_id} to {d.region} as {name}"))
            target = b.ec2.copy_image(image_id, d.region, name, description, d.kms_key_id)
            b.images.append(DistributedImage(d.region, target))
        if d.tags:
            b.ec2.tag(target, d.region, {**b.recipe.tags, **d.tags, "kiln:build": b.label})
        elif target != image_id:
            b.ec2.tag(target, d.region, {**b.recipe.tags, "kiln:build": b.label})
        if d.share_with or d.public:
            b.note(StepEvent("info", f"sharing {target} in {d.region}"))
            b.ec2.share(target, d.region, d.share_with, d.public)
        if d.deprecation_time:
            b.ec2.deprecate(target, d.region, d.deprecation_time)
    b.note(StepEvent("info", f"distributed to {', '.join(r.region for r in distribution.regions)}"))


def _clean_up(b: _Build, kept: str | None) -> None:
    """Terminate the build's instances (but ``kept``) and deregister every image it made."""
    doomed = [i for i in b.instances if i != kept]
    try:
        if doomed:
            b.note(StepEvent("info", f"terminating {', '.join(doomed)}"))
            b.ec2.terminate(doomed)
    finally:
        for image in reversed(b.images):
            b.note(StepEvent("info", f"deregistering {image.image_id} in {image.region}"))
            b.ec2.deregister(image.image_id, image.region)
