"""Block public access for AMIs (docs/governance.md#block-public-access): per account and
region, ``block-new-sharing`` refuses any new public share of the account's images
(ModifyImageAttribute adding ``group=all``); images already public stay public. The default is
``unblocked``. Kiln applies a change at once (EC2 takes up to ten minutes)."""

from __future__ import annotations

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import governance as cat
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.validate import dry_run

BLOCKED = "block-new-sharing"
UNBLOCKED = "unblocked"


def enable_image_block_public_access(
    services: Services, caller: Caller, state: str, dry_run_flag: bool = False
) -> str:
    if state != BLOCKED:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid. "
            f"Valid values: {BLOCKED}.",
        )
    dry_run(dry_run_flag)
    with services.catalog.write() as tx:
        cat.update_settings(
            tx, caller.account_id, caller.region, {"image_block_public_access": BLOCKED}
        )
    return BLOCKED


def disable_image_block_public_access(
    services: Services, caller: Caller, dry_run_flag: bool = False
) -> str:
    dry_run(dry_run_flag)
    with services.catalog.write() as tx:
        cat.update_settings(
            tx, caller.account_id, caller.region, {"image_block_public_access": UNBLOCKED}
        )
    return UNBLOCKED


def get_image_block_public_access_state(
    services: Services, caller: Caller, dry_run_flag: bool = False
) -> str:
    dry_run(dry_run_flag)
    with services.catalog.read() as tx:
        return cat.get_settings(tx, caller.account_id, caller.region).image_block_public_access


def check_public_share_allowed(tx: Tx, caller: Caller) -> None:
    """Before an image of the caller's becomes public. :raises KilnError: OperationNotPermitted."""
    state = cat.get_settings(tx, caller.account_id, caller.region).image_block_public_access
    if state == BLOCKED:
        raise KilnError(
            errors.OperationNotPermitted,
            "You can't publicly share this image because block public access for AMIs is "
            "enabled for this account. To publicly share the image, you must call the "
            "DisableImageBlockPublicAccess API.",
        )
