"""Who may see and who may change an image: the one place these checks live."""

from __future__ import annotations

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat
from kiln.catalog.records import ImageRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.validate import check_image_id


def not_found(image_ids: list[str]) -> KilnError:
    """EC2's words: ``The image id '[ami-1]' does not exist``, ``The image ids '[ami-1,
    ami-2]' do not exist``."""
    if len(image_ids) == 1:
        return KilnError(
            errors.InvalidAMIIDNotFound, f"The image id '[{image_ids[0]}]' does not exist"
        )
    return KilnError(
        errors.InvalidAMIIDNotFound, f"The image ids '[{', '.join(image_ids)}]' do not exist"
    )


def can_see(tx: Tx, caller: Caller, image: ImageRecord) -> bool:
    if image.region != caller.region or image.state == "deregistered":
        return False
    if image.owner_id == caller.account_id:
        return True
    if image.state == "disabled":
        return False
    return cat.has_launch_permission(tx, image.image_id, caller.account_id)


def visible_image(tx: Tx, caller: Caller, image_id: str) -> ImageRecord:
    """The image if ``caller`` may see it; else InvalidAMIID.Malformed / .NotFound, or
    .Unavailable for the owner's own deregistered image."""
    check_image_id(image_id)
    image = cat.get_image(tx, image_id, caller.account_id)
    if (
        image is not None
        and image.state == "deregistered"
        and image.region == caller.region
        and image.owner_id == caller.account_id
    ):
        raise KilnError(
            errors.InvalidAMIIDUnavailable, f"The image id '[{image_id}]' is no longer available"
        )
    if image is None or not can_see(tx, caller, image):
        raise not_found([image_id])
    return image


def owned_image(tx: Tx, caller: Caller, image_id: str, dry_run: bool = False) -> ImageRecord:
    """The image if ``caller`` owns it. A visible image of another account answers AuthFailure
    (UnauthorizedOperation to a dry run); an invisible one InvalidAMIID.NotFound."""
    image = visible_image(tx, caller, image_id)
    if image.owner_id != caller.account_id:
        if dry_run:
            raise KilnError(
                errors.UnauthorizedOperation, "You are not authorized to perform this operation."
            )
        raise KilnError(errors.NotAuthorizedForResource, f"Not authorized for image:{image_id}")
    return image
