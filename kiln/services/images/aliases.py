"""Image aliases (``kiln alias``): an image id that stands for another image, or for the newest
image of a family, in one region and for every account (docs/aliases.md).

AWS code often names images by hard-coded AWS ids (``ami-0123456789abcdef0``); an operator points
those ids at Kiln's images. DescribeImages, RunInstances and CopyImage resolve an alias at the
time of the call (:func:`resolve_image_id`); an alias that points at nothing (a deleted image, a
family without an available image) fails there with InvalidAMIID.NotFound naming the alias.
A real image id always wins over an alias of the same id (and ``set_alias`` refuses one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import SYSTEM_ACCOUNT_ID, Tx
from kiln.catalog import aliases as cat
from kiln.catalog import images as cat_images
from kiln.catalog.records import ImageAliasRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.access import can_see
from kiln.services.images.families import is_family, newest_image

#: EC2's image ids: ``ami-`` and 8 or 17 hex digits.
ALIAS_RE = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


@dataclass(frozen=True, slots=True)
class AliasView:
    region: str
    alias: str
    target: str
    created: str
    #: what the alias resolves to now for the system account's view (an image id), or None
    resolves_to: str | None


def _check_region(services: Services, region: str) -> None:
    if region not in services.regions:
        raise KilnError(
            errors.InvalidRegion,
            f"region {region!r} is not one of {', '.join(services.regions)}",
        )


def _check_alias(alias: str) -> None:
    if not ALIAS_RE.match(alias):
        raise KilnError(
            errors.InvalidAMIIDMalformed,
            f'Invalid alias "{alias}": an alias is an image id (ami- and 8 or 17 hex digits)',
        )


def _real_image(tx: Tx, region: str, image_id: str) -> bool:
    image = cat_images.get_image(tx, image_id, "")
    return image is not None and image.region == region and image.state != "deregistered"


def set_alias(services: Services, region: str, alias: str, target: str) -> ImageAliasRecord:
    """Point ``alias`` at ``target`` (an image id of ``region``, or a family) in ``region``;
    replaces the alias's former target. A family need not have an image yet."""
    _check_region(services, region)
    _check_alias(alias)
    with services.catalog.write() as tx:
        if _real_image(tx, region, alias):
            raise KilnError(
                errors.InvalidParameterValue,
                f"{alias} is an image of {region}; an alias cannot hide a real image",
            )
        if target.startswith("ami-"):
            if cat.get_image_alias(tx, region, target) is not None:
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"{target} is itself an alias; point {alias} at an image or a family",
                )
            if not _real_image(tx, region, target):
                raise KilnError(
                    errors.InvalidAMIIDNotFound,
                    f"The image id '[{target}]' does not exist in {region}",
                )
        elif not is_family(target):
            raise KilnError(
                errors.InvalidParameterValue,
                f"target {target!r} is neither an image id (ami-…) nor an image family "
                "(such as kiln/debian)",
            )
        return cat.set_image_alias(tx, region, alias, target)


def delete_alias(services: Services, region: str, alias: str) -> None:
    _check_region(services, region)
    _check_alias(alias)
    with services.catalog.write() as tx:
        if not cat.delete_image_alias(tx, region, alias):
            raise KilnError(errors.InvalidAMIIDNotFound, f"No alias {alias} in {region}")


def list_aliases(services: Services, region: str | None = None) -> list[AliasView]:
    """Every alias (of ``region`` if given) and what it resolves to now (None: nothing)."""
    if region is not None:
        _check_region(services, region)
    out = []
    with services.catalog.read() as tx:
        for a in cat.list_image_aliases(tx, region):
            caller = Caller(SYSTEM_ACCOUNT_ID, a.region)
            if a.target.startswith("ami-"):
                now = a.target if _real_image(tx, a.region, a.target) else None
            else:
                now = newest_image(tx, caller, a.target)
            out.append(AliasView(a.region, a.alias, a.target, a.created, now))
    return out


def resolve_image_id(tx: Tx, caller: Caller, image_id: str) -> str:
    """The real image id ``image_id`` stands for in the caller's region: itself unless it is an
    alias (and no image has that id). An alias whose target the caller cannot see, or which
    points at nothing, is InvalidAMIID.NotFound naming the alias."""
    if not ALIAS_RE.match(image_id):
        return image_id
    alias = cat.get_image_alias(tx, caller.region, image_id)
    if alias is None or _real_image(tx, caller.region, image_id):
        return image_id
    target = alias.target
    if target.startswith("ami-"):
        image = cat_images.get_image(tx, target, caller.account_id)
        if image is None or not can_see(tx, caller, image):
            raise KilnError(
                errors.InvalidAMIIDNotFound,
                f"The image id '[{image_id}]' does not exist: it is an alias of {target}, "
                "which does not exist or is not available to you",
            )
        return target
    newest = newest_image(tx, caller, target)
    image = cat_images.get_image(tx, newest, caller.account_id) if newest else None
    if image is None or not can_see(tx, caller, image):
        raise KilnError(
            errors.InvalidAMIIDNotFound,
            f"The image id '[{image_id}]' does not exist: it is an alias of the family "
            f"{target}, which has no available image in {caller.region}",
        )
    return image.image_id
