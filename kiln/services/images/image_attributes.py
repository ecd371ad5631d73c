"""Describe/Modify/ResetImageAttribute for EC2's thirteen image attributes.

Describe answers every attribute. Modify changes what EC2 lets change (description,
launchPermission, productCodes, imdsSupport); Reset resets launchPermission only. Asking to
modify or reset another attribute gets EC2's InvalidParameterValue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import images as cat
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import (
    ImageRecord,
    LaunchPermissionRecord,
    ProductCodeRecord,
)
from kiln.errors import KilnError
from kiln.services.accounts.quotas import check_public_image_quota, check_share_quota
from kiln.services.context import Caller, Services
from kiln.services.images.access import owned_image, visible_image
from kiln.services.images.block_public_access import check_public_share_allowed
from kiln.services.keys.kms_access import is_aws_managed_key
from kiln.services.scans.share_policy import check_public_share_findings
from kiln.services.validate import ACCOUNT_RE, dry_run

ATTRIBUTES = (
    "description",
    "kernel",
    "ramdisk",
    "launchPermission",
    "productCodes",
    "blockDeviceMapping",
    "sriovNetSupport",
    "bootMode",
    "tpmSupport",
    "uefiData",
    "lastLaunchedTime",
    "imdsSupport",
    "deregistrationProtection",
)
OWNER_ONLY = frozenset({"launchPermission", "blockDeviceMapping"})
MODIFIABLE = frozenset({"description", "launchPermission", "productCodes", "imdsSupport"})
ORG_ARN_RE = re.compile(r"^arn:aws:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$")
OU_ARN_RE = re.compile(r"^arn:aws:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9-]+$")
PRODUCT_CODE_RE = re.compile(r"^[a-z0-9]{8,32}$")


@dataclass(frozen=True, slots=True)
class ImageAttribute:
    """One attribute of one image: ``image`` carries the scalar ones."""

    attribute: str
    image: ImageRecord
    launch_permissions: tuple[LaunchPermissionRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class ModifyImageAttributeRequest:
    image_id: str
    attribute: str | None = None
    description: str | None = None
    add: tuple[LaunchPermissionRecord, ...] = ()
    remove: tuple[LaunchPermissionRecord, ...] = ()
    product_codes: tuple[str, ...] = ()
    imds_support: str | None = None
    dry_run: bool = False


def _check_attribute(name: str) -> None:
    if name not in ATTRIBUTES:
        raise KilnError(errors.InvalidRequest, "The request received was invalid.")


def describe_image_attribute(
    services: Services, caller: Caller, image_id: str, attribute: str, dry_run_flag: bool
) -> ImageAttribute:
    _check_attribute(attribute)
    with services.catalog.read() as tx:
        image = visible_image(tx, caller, image_id)
        mine = image.owner_id == caller.account_id
        if attribute in OWNER_ONLY and not mine:
            if dry_run_flag:
                dry_run(True, allowed=False)
            raise KilnError(
                errors.NotAuthorizedForResource,
                "Unauthorized attempt to access restricted resource",
            )
        dry_run(dry_run_flag)
        perms = (
            tuple(cat.launch_permissions(tx, image_id)) if attribute == "launchPermission" else ()
        )
    return ImageAttribute(attribute, image, perms)


def _check_permissions(tx: Tx, image: ImageRecord, perms: Sequence[LaunchPermissionRecord]) -> None:
    for p in perms:
        if p.user_id is not None:
            if not ACCOUNT_RE.match(p.user_id) or cat_accounts.get_account(tx, p.user_id) is None:
                raise KilnError(
                    errors.InvalidAMIAttributeItemValue,
                    f'Invalid attribute item value "{p.user_id}" for userId item type.',
                )
        elif p.group is not None:
            if p.group != "all":
                raise KilnError(
                    errors.InvalidAMIAttributeItemValue,
                    f'Invalid attribute item value "{p.group}" for group item type.',
                )
        elif p.organization_arn is not None:
            if not ORG_ARN_RE.match(p.organization_arn):
                raise KilnError(
                    errors.InvalidParameterValue, f"Invalid organization ARN: {p.organization_arn}"
                )
        elif p.organizational_unit_arn is not None:
            if not OU_ARN_RE.match(p.organizational_unit_arn):
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"Invalid organizational unit ARN: {p.organizational_unit_arn}",
                )
        else:
            raise KilnError(
                errors.InvalidParameterValue,
                "A launch permission needs a UserId, Group, OrganizationArn or "
                "OrganizationalUnitArn",
            )


def _under_aws_managed_key(tx: Tx, services: Services, image: ImageRecord, caller: Caller) -> bool:
    """Whether a snapshot of the image is under an account's ``alias/aws/ebs`` key, whose key
    policy admits no other account (docs/kms.md#cross-account-use)."""
    ids = [bd.ebs.snapshot_id for bd in image.block_devices if bd.ebs and bd.ebs.snapshot_id]
    return any(
        is_aws_managed_key(tx, services.catalog, snap.data_key_id)
        for snap in cat_snapshots.get_snapshots(tx, ids, caller.account_id)
    )


def modify_image_attribute(
    services: Services, caller: Caller, req: ModifyImageAttributeRequest
) -> None:
    if req.attribute is not None:
        _check_attribute(req.attribute)
        if req.attribute not in MODIFIABLE:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Value ({req.attribute}) for parameter attribute is invalid. "
                "The attribute cannot be modified.",
            )
    changes_perms = bool(req.add or req.remove)
    if not (
        changes_perms
        or req.description is not None
        or req.product_codes
        or req.imds_support is not None
    ):
        raise KilnError(
            errors.MissingParameter,
            "The request must contain the parameter Attribute with a value to set",
        )
    if req.imds_support is not None and req.imds_support != "v2.0":
        raise KilnError(errors.InvalidParameterValue, "ImdsSupport can only be set to v2.0")
    if req.description is not None and len(req.description) > 255:
        raise KilnError(
            errors.InvalidParameterValue, "AMI descriptions must be at most 255 characters long"
        )
    for code in req.product_codes:
        if not PRODUCT_CODE_RE.match(code):
            raise KilnError(errors.InvalidParameterValue, f"Invalid product code {code}")
    with services.catalog.write() as tx:
        image = owned_image(tx, caller, req.image_id, req.dry_run)
        _check_permissions(tx, image, req.add + req.remove)
        if req.add and _under_aws_managed_key(tx, services, image, caller):
            raise KilnError(
                errors.InvalidParameter,
                "Images with snapshots encrypted with the AWS Managed CMK can't be shared. "
                "Copy the image with a customer managed key, then share the copy.",
            )
        if req.add and image.state == "disabled":
            raise KilnError(
                errors.IncorrectState,
                f"The image {image.image_id} is disabled and cannot be shared.",
            )
        if any(p.group == "all" for p in req.add) and any(
            bd.ebs and bd.ebs.encrypted for bd in image.block_devices
        ):
            raise KilnError(
                errors.InvalidParameterValue,
                "Images with encrypted snapshots cannot be made public.",
            )
        if any(p.group == "all" for p in req.add) and any(
            c.product_code_type == "marketplace" for c in image.product_codes
        ):
            raise KilnError(
                errors.InvalidParameter, "AMIs with a product code can not be made public."
            )
        if any(p.group == "all" for p in req.add) and not image.is_public:
            check_public_share_allowed(tx, caller)  # docs/governance.md#block-public-access
            check_public_image_quota(tx, caller.account_id, caller.region)  # docs/quotas.md
            check_public_share_findings(tx, services, image)  # docs/scan.md#sharing-policy
        shares = {p.user_id for p in req.add if p.user_id is not None}
        if shares:
            check_share_quota(tx, caller.account_id, image.image_id, shares)
        if req.product_codes and image.is_public:
            raise KilnError(
                errors.InvalidParameterValue, "Product codes cannot be added to a public image."
            )
        dry_run(req.dry_run)
        if req.description is not None:
            cat.update_image(tx, image.image_id, {"description": req.description})
        if req.imds_support is not None:
            cat.update_image(tx, image.image_id, {"imds_support": req.imds_support})
        if req.product_codes:
            cat.add_product_codes(
                tx, image.image_id, [ProductCodeRecord(c, "marketplace") for c in req.product_codes]
            )
        if req.add:
            cat.add_launch_permissions(tx, image.image_id, req.add)
        if req.remove:
            cat.remove_launch_permissions(tx, image.image_id, req.remove)


def reset_image_attribute(
    services: Services, caller: Caller, image_id: str, attribute: str, dry_run_flag: bool
) -> None:
    _check_attribute(attribute)
    if attribute != "launchPermission":
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({attribute}) for parameter attribute is invalid. Only "
            "launchPermission can be reset.",
        )
    with services.catalog.write() as tx:
        owned_image(tx, caller, image_id, dry_run_flag)
        dry_run(dry_run_flag)
        cat.reset_launch_permissions(tx, image_id)
