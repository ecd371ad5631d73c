"""DescribeSnapshotAttribute, ModifySnapshotAttribute, ResetSnapshotAttribute: who may create
volumes from a snapshot (createVolumePermission), and its product codes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import marketplace as cat_marketplace
from kiln.catalog import snapshots as cat
from kiln.catalog.snapshots import SnapshotPermissionRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.keys.kms_access import is_aws_managed_key
from kiln.services.snapshots.access import (
    owned_snapshot,
)
from kiln.services.validate import (
    ACCOUNT_RE,
    dry_run,
)

log = logging.getLogger(__name__)

ATTRIBUTES = ("productCodes", "createVolumePermission")


@dataclass(frozen=True, slots=True)
class SnapshotAttributeResult:
    snapshot_id: str
    create_volume_permissions: tuple[SnapshotPermissionRecord, ...] | None = None
    product_codes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ModifySnapshotAttributeRequest:
    snapshot_id: str
    attribute: str | None = None
    operation_type: str | None = None
    add: tuple[SnapshotPermissionRecord, ...] = ()
    remove: tuple[SnapshotPermissionRecord, ...] = ()
    dry_run: bool = False


def _check_attribute(attribute: str) -> None:
    if attribute not in ATTRIBUTES:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({attribute}) for parameter attribute is invalid. "
            f"Expecting one of: {', '.join(ATTRIBUTES)}.",
        )


def describe_snapshot_attribute(
    services: Services, caller: Caller, snapshot_id: str, attribute: str, dry_run_flag: bool
) -> SnapshotAttributeResult:
    _check_attribute(attribute)
    with services.catalog.read() as tx:
        owned_snapshot(tx, caller, snapshot_id, dry_run_flag)
        dry_run(dry_run_flag)
        if attribute == "productCodes":
            codes = cat_marketplace.snapshot_product_codes(tx, [snapshot_id])
            return SnapshotAttributeResult(snapshot_id, product_codes=codes)
        perms = cat.snapshot_permissions(tx, snapshot_id)
    return SnapshotAttributeResult(snapshot_id, create_volume_permissions=tuple(perms))


def _check_permissions(perms: tuple[SnapshotPermissionRecord, ...]) -> None:
    for p in perms:
        if p.group is not None:
            if p.group != "all" or p.user_id is not None:
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"Value ({p.group}) for parameter Group is invalid. Expecting 'all'.",
                )
        elif p.user_id is None or not ACCOUNT_RE.match(p.user_id):
            raise KilnError(errors.InvalidUserIDMalformed, f'Invalid user id: "{p.user_id}"')


def modify_snapshot_attribute(
    services: Services, caller: Caller, req: ModifySnapshotAttributeRequest
) -> None:
    if req.attribute is not None:
        _check_attribute(req.attribute)
        if req.attribute == "productCodes":
            raise KilnError(
                errors.InvalidParameterValue,
                "The productCodes attribute of a snapshot cannot be modified.",
            )
    if not (req.add or req.remove):
        raise KilnError(
            errors.MissingParameter,
            "The request must contain the parameter CreateVolumePermission or UserId/GroupName",
        )
    _check_permissions(req.add + req.remove)
    with services.catalog.write() as tx:
        snap = owned_snapshot(tx, caller, req.snapshot_id, req.dry_run)
        if any(p.group == "all" for p in req.add) and snap.encrypted:
            raise KilnError(
                errors.InvalidParameterValue, "Encrypted snapshots cannot be shared publicly."
            )
        if req.add and is_aws_managed_key(tx, services.catalog, snap.data_key_id):
            raise KilnError(
                errors.InvalidParameter,
                "Snapshots encrypted with the AWS Managed CMK can't be shared. "
                "Specify another snapshot.",
            )
        dry_run(req.dry_run)
        if req.add:
            cat.add_snapshot_permissions(tx, req.snapshot_id, req.add)
        if req.remove:
            cat.remove_snapshot_permissions(tx, req.snapshot_id, req.remove)


def reset_snapshot_attribute(
    services: Services, caller: Caller, snapshot_id: str, attribute: str, dry_run_flag: bool
) -> None:
    _check_attribute(attribute)
    if attribute != "createVolumePermission":
        raise KilnError(
            errors.InvalidParameterValue, "Only the createVolumePermission attribute can be reset."
        )
    with services.catalog.write() as tx:
        owned_snapshot(tx, caller, snapshot_id, dry_run_flag)
        dry_run(dry_run_flag)
        cat.remove_snapshot_permissions(tx, snapshot_id, None)
