"""A recipe's ``parentImage`` to an image id (docs/builds.md#parent-images): an image id, the
newest build of a recipe matching a version filter (``web/1.x.x``, ``web/latest``; ``latest``
alone: this recipe's newest build), an image's exact name, or a family's newest image."""

from __future__ import annotations

from kiln import errors
from kiln.builder.recipe import WILDCARD_RE, version_matches
from kiln.catalog import builds as cat
from kiln.errors import KilnError
from kiln.services.builds.ports import ImageLookup
from kiln.services.context import Caller, Services
from kiln.services.images import families


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def newest_build(
    services: Services, caller: Caller, recipe: str, pattern: str
) -> cat.BuildVersionRecord | None:
    with services.catalog.read() as tx:
        found = [
            b
            for b in cat.build_versions(tx, caller.account_id, caller.region, recipe)
            if b.state == "available" and b.image_id and version_matches(pattern, b.version)
        ]
    return max(found, key=lambda b: (_version_key(b.version), b.build), default=None)


def resolve_parent(
    services: Services, caller: Caller, ec2: ImageLookup, parent: str, recipe: str
) -> str:
    if parent.startswith("ami-"):
        if ec2.describe_image(parent) is None:
            raise KilnError(
                errors.InvalidAMIIDNotFound, f"The image id '[{parent}]' does not exist"
            )
        return parent
    name, _, last = parent.rpartition("/")
    if parent == "latest":
        name, last = recipe, "x.x.x"
    if name and (last == "latest" or WILDCARD_RE.match(last)):
        build = newest_build(services, caller, name, "x.x.x" if last == "latest" else last)
        if build is not None and build.image_id:
            return build.image_id
        if parent == "latest":
            raise KilnError(
                errors.InvalidAMIIDNotFound,
                f"parentImage latest: recipe {recipe} has no available build in {caller.region}",
            )
    by_name = ec2.find_image_by_name(parent)
    if by_name is not None:
        return by_name
    if families.is_family(parent):
        with services.catalog.read() as tx:
            newest = families.newest_image(tx, caller, parent)
        if newest is not None:
            return newest
    raise KilnError(
        errors.InvalidAMIIDNotFound,
        f"parentImage {parent}: no image with that id or name, no build of a recipe matching "
        f"it and no family of that name has an available image in {caller.region}",
    )
