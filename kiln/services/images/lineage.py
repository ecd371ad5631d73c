"""An image's lineage and references: GetImageAncestry, DescribeImageReferences
(docs/lineage.md).

Every image CopyImage or CreateImage makes records ``SourceImageId`` and ``SourceImageRegion``
(copy_image.py, create_image.py); the ancestry follows them back, across regions, to an image
that names no source (the root), or to one that no longer exists or the caller cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln import errors
from kiln.catalog import image_usage as cat_usage
from kiln.catalog import images as cat
from kiln.catalog.records import ImageRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import can_see, visible_image
from kiln.services.validate import (
    check_image_id,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)

#: The resource types DescribeImageReferences knows (EC2's ImageReferenceResourceType); Kiln has
#: instances only, so the others never reference an image.
REFERENCE_TYPES = (
    "ec2:Instance",
    "ec2:LaunchTemplate",
    "ssm:Parameter",
    "imagebuilder:ImageRecipe",
    "imagebuilder:ContainerRecipe",
)
MAX_ANCESTRY = 1000  # a guard against a cycle in hand-edited catalogs


@dataclass(frozen=True, slots=True)
class ImageReference:
    image_id: str
    resource_type: str
    arn: str


@dataclass(frozen=True, slots=True)
class ReferencePage:
    references: tuple[ImageReference, ...]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class DescribeImageReferencesRequest:
    image_ids: tuple[str, ...]
    include_all_resource_types: bool = False
    resource_types: tuple[str, ...] = ()
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


def get_image_ancestry(
    services: Services, caller: Caller, image_id: str, dry_run_flag: bool = False
) -> list[ImageRecord]:
    """The image, then its source, then its source's source... (the root last)."""
    with services.catalog.read() as tx:
        image = visible_image(tx, caller, image_id)
        dry_run(dry_run_flag)
        chain = [image]
        while (
            chain[-1].source_image_id is not None
            and chain[-1].source_image_region is not None
            and len(chain) < MAX_ANCESTRY
        ):
            source = cat.get_image(tx, chain[-1].source_image_id, caller.account_id)
            where = Caller(caller.account_id, chain[-1].source_image_region)
            if source is None or source.region != where.region or not can_see(tx, where, source):
                break
            chain.append(source)
    return chain


def describe_image_references(
    services: Services, caller: Caller, req: DescribeImageReferencesRequest
) -> ReferencePage:
    for image_id in req.image_ids:
        check_image_id(image_id)
    if not req.include_all_resource_types and not req.resource_types:
        raise KilnError(
            errors.MissingParameter,
            "Either IncludeAllResourceTypes or ResourceTypes must be specified.",
        )
    for kind in req.resource_types:
        if kind not in REFERENCE_TYPES:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Value ({kind}) for parameter ResourceType is invalid. "
                f"Valid values: {', '.join(REFERENCE_TYPES)}",
            )
    check_max_results(req.max_results, 5, 1000)
    after = decode_token(req.next_token, req.image_ids)
    with services.catalog.read() as tx:
        for image_id in req.image_ids:
            visible_image(tx, caller, image_id)
        dry_run(req.dry_run)
        wanted = req.include_all_resource_types or "ec2:Instance" in req.resource_types
        found = (
            cat_usage.instances_using(tx, caller.region, caller.account_id, req.image_ids)
            if wanted
            else []
        )
    refs = [
        ImageReference(
            image_id,
            "ec2:Instance",
            f"arn:aws:ec2:{caller.region}:{caller.account_id}:instance/{instance_id}",
        )
        for image_id, instance_id in found
    ]
    start = int(str(after)) if after is not None else 0
    size = req.max_results or len(refs) or 1
    page = refs[start : start + size]
    more = start + size < len(refs)
    return ReferencePage(tuple(page), encode_token(start + size, req.image_ids) if more else None)
