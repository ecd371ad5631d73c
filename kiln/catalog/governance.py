"""An account's per-region settings (EBS encryption by default, block public access for AMIs,
Allowed AMIs) and the operator's quotas, plus the counts the quotas are checked against."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import AccountQuotaRecord, AccountSettingsRecord


def get_settings(tx: Session, account_id: str, region: str) -> AccountSettingsRecord:
    row = tx.get(models.AccountSettings, (account_id, region))
    if row is None:
        return AccountSettingsRecord(account_id, region)
    return AccountSettingsRecord(
        account_id,
        region,
        row.ebs_encryption_by_default,
        row.ebs_default_kms_key_id,
        row.image_block_public_access,
        row.allowed_images_state,
        tuple(row.allowed_images_criteria or ()),
    )


def update_settings(tx: Session, account_id: str, region: str, values: dict[str, Any]) -> None:
    """Set the named columns of the account's settings row in ``region`` (made if missing)."""
    row = tx.get(models.AccountSettings, (account_id, region))
    if row is None:
        row = models.AccountSettings(
            account_id=account_id,
            region=region,
            ebs_encryption_by_default=False,
            image_block_public_access="unblocked",
            allowed_images_state="disabled",
        )
        tx.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    tx.flush()


def get_quota(tx: Session, account_id: str) -> AccountQuotaRecord:
    row = tx.get(models.AccountQuota, account_id)
    if row is None:
        return AccountQuotaRecord(account_id)
    return AccountQuotaRecord(
        account_id, row.images, row.snapshots, row.public_images, row.shares_per_image
    )


def set_quota(tx: Session, quota: AccountQuotaRecord) -> None:
    row = tx.get(models.AccountQuota, quota.account_id)
    if row is None:
        row = models.AccountQuota(account_id=quota.account_id)
        tx.add(row)
    row.images = quota.images
    row.snapshots = quota.snapshots
    row.public_images = quota.public_images
    row.shares_per_image = quota.shares_per_image
    tx.flush()


def count_images(tx: Session, account_id: str, region: str, public_only: bool = False) -> int:
    """The account's images in ``region`` that still exist (not deregistered)."""
    i = models.Image
    query = select(func.count()).where(
        i.owner_id == account_id, i.region == region, i.state != "deregistered"
    )
    if public_only:
        query = query.where(i.is_public.is_(True))
    return int(tx.scalar(query) or 0)


def count_snapshots(tx: Session, account_id: str, region: str) -> int:
    s = models.Snapshot
    query = select(func.count()).where(s.owner_id == account_id, s.region == region)
    return int(tx.scalar(query) or 0)


def shared_accounts(tx: Session, image_id: str) -> set[str]:
    """The account ids the image is shared with (launch permissions by UserId)."""
    p = models.LaunchPermission
    query = select(p.user_id).where(p.image_id == image_id, p.user_id.is_not(None))
    return {u for u in tx.scalars(query) if u}
