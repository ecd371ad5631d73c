"""CancelImageLaunchPermission: a grantee drops an image shared with it (docs/community.md).

Only an explicit launch permission for the caller's own account can be dropped. EC2 answers
``InvalidAMIID.NotFound`` for every other image alike: one that does not exist, one not shared
with the caller, one it sees only because it is public or shared with its organization, and its
own image. The owner may share the image again; nothing else changes (a public image stays
public, other grantees keep theirs).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.catalog import images as cat
from kiln.catalog.records import LaunchPermissionRecord
from kiln.services.context import Caller, Services
from kiln.services.images.access import not_found
from kiln.services.validate import check_image_id, dry_run


@dataclass(frozen=True, slots=True)
class CancelImageLaunchPermissionRequest:
    image_id: str
    dry_run: bool = False


def cancel_image_launch_permission(
    services: Services, caller: Caller, req: CancelImageLaunchPermissionRequest
) -> None:
    check_image_id(req.image_id)
    grant = LaunchPermissionRecord(user_id=caller.account_id)
    with services.catalog.write() as tx:
        image = cat.get_image(tx, req.image_id, caller.account_id)
        if (
            image is None
            or image.region != caller.region
            or image.state == "deregistered"
            or image.owner_id == caller.account_id
            or grant not in cat.launch_permissions(tx, image.image_id)
        ):
            raise not_found([req.image_id])
        dry_run(req.dry_run)
        cat.remove_launch_permissions(tx, image.image_id, [grant])
