"""CreateImageRecipe, GetImageRecipe (docs/imagebuilder.md#recipes): a parent image, components
(by ARN, with parameter values, bound when the recipe is created) and block devices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kiln.builder.component import bind
from kiln.builder.recipe import BlockDevice, Recipe, RecipeComponent
from kiln.builder.yamlnodes import Where
from kiln.catalog.imagebuilder import IbResourceRecord
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.imagebuilder import arns
from kiln.services.imagebuilder.components import parsed, resolve_component

KIND = "image-recipe"


@dataclass(frozen=True, slots=True)
class CreateImageRecipeRequest:
    name: str | None
    semantic_version: str | None
    parent_image: str | None
    components: tuple[Mapping[str, object], ...]
    description: str = ""
    block_device_mappings: tuple[Mapping[str, object], ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    ami_tags: dict[str, str] = field(default_factory=dict)
    working_directory: str | None = None


def _given(item: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    params = item.get("parameters")
    for p in params if isinstance(params, list) else []:
        if isinstance(p, Mapping):
            value = p.get("value")
            out[str(p.get("name", ""))] = (
                ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
            )
    return out


def build_recipe(services: Services, caller: Caller, body: Mapping[str, object]) -> Recipe:
    """The build engine's recipe from a stored (or new) recipe body; its components resolved and
    their parameters bound (a refusal names ``components[i].parameters``)."""
    items = body.get("components")
    bound: list[RecipeComponent] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        member = f"components[{i}].componentArn"
        record = resolve_component(
            services,
            caller,
            str(item.get("componentArn")) if isinstance(item, Mapping) else None,
            member,
        )
        component = parsed(record)
        given = _given(item) if isinstance(item, Mapping) else {}
        bound.append(
            RecipeComponent(
                component, bind(component, given, Where("recipe", 1, f"components[{i}].parameters"))
            )
        )
    devices = body.get("blockDeviceMappings")
    block: list[BlockDevice] = []
    for d in devices if isinstance(devices, list) else []:
        ebs = d.get("ebs") if isinstance(d, Mapping) else None
        ebs = ebs if isinstance(ebs, Mapping) else {}
        size = ebs.get("volumeSize")
        vtype = ebs.get("volumeType")
        block.append(
            BlockDevice(
                str(d.get("deviceName", "/dev/xvda")),
                size if isinstance(size, int) else None,
                vtype if isinstance(vtype, str) else None,
                ebs.get("deleteOnTermination") is not False,
            )
        )
    tags = body.get("amiTags")
    return Recipe(
        str(body["name"]),
        str(body.get("description") or ""),
        str(body["version"]),
        str(body["parentImage"]),
        tuple(bound),
        tuple(block),
        "t2.micro",
        {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
        "recipe",
    )


def create_image_recipe(
    services: Services, caller: Caller, req: CreateImageRecipeRequest
) -> IbResourceRecord:
    name = arns.check_name(req.name)
    version = arns.check_version(req.semantic_version)
    if not req.parent_image:
        raise KilnError(
            arns.INVALID, "The value supplied for parameter 'parentImage' is not valid."
        )
    if not req.components:
        raise KilnError(
            arns.INVALID,
            "The value supplied for parameter 'components' is not valid. A recipe has at least "
            "one component.",
        )
    the_arn = arns.arn(caller, KIND, name, version)
    body: dict[str, object] = {
        "arn": the_arn,
        "type": "AMI",
        "name": name,
        "description": req.description,
        "platform": "Linux",
        "owner": caller.account_id,
        "version": version,
        "components": [dict(c) for c in req.components],
        "parentImage": req.parent_image,
        "blockDeviceMappings": [dict(d) for d in req.block_device_mappings],
        "dateCreated": utc_now(),
        "tags": dict(req.tags),
        "amiTags": dict(req.ami_tags),
    }
    if req.working_directory:
        body["workingDirectory"] = req.working_directory
    build_recipe(services, caller, body)  # every component found, every parameter bound
    return arns.add(services, caller, KIND, the_arn, name, version, "", body)


def get_image_recipe(
    services: Services, caller: Caller, recipe_arn: str | None
) -> IbResourceRecord:
    return arns.find(services, caller, KIND, recipe_arn, "imageRecipeArn")
