"""The operator's per-account quotas (``kiln account quota``; docs/quotas.md) and the checks the
rules call before they create what a quota counts.

Each limit applies per region, as EC2's quotas do: images (every image that is not
deregistered, whichever action made it), snapshots, public images, and accounts one image is
shared with. No quota row, or a field of None, means no limit. The checks run inside the
rule's write transaction, before anything is written, so a refused call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Catalog, Tx
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import governance as cat
from kiln.catalog.records import AccountQuotaRecord
from kiln.errors import KilnError

#: The quota fields, as the CLI spells them (``--images``) and as the record names them.
FIELDS = {
    "images": "images",
    "snapshots": "snapshots",
    "public-images": "public_images",
    "shares-per-image": "shares_per_image",
}


@dataclass(frozen=True, slots=True)
class QuotaChange:
    """One ``--field VALUE`` as typed: a whole number >= 0, or ``none`` to lift the limit."""

    field: str
    value: str


def parse_quota(field: str, text: str) -> int | None:
    """``text`` as a limit (None: ``none``). :raises KilnError: naming the field."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    if not text.strip().isdigit():
        raise KilnError(
            errors.InvalidParameterValue,
            f"--{field}: '{text}' is not a whole number >= 0 (or 'none' for no limit).",
        )
    return int(text.strip())


def set_account_quota(
    catalog: Catalog, account_id: str, changes: tuple[QuotaChange, ...]
) -> AccountQuotaRecord:
    """Apply ``changes`` to the account's quota; every value is parsed before anything is
    written. :raises KilnError: an unknown account or a value that does not parse."""
    parsed: dict[str, int | None] = {}
    for change in changes:
        if change.field not in FIELDS:
            raise KilnError(errors.InvalidParameterValue, f"unknown quota field {change.field}")
        parsed[FIELDS[change.field]] = parse_quota(change.field, change.value)
    with catalog.write() as tx:
        if cat_accounts.get_account(tx, account_id) is None:
            raise KilnError(errors.InvalidParameterValue, f"There is no account {account_id}.")
        quota = cat.get_quota(tx, account_id)
        merged = AccountQuotaRecord(
            account_id,
            **{
                name: parsed.get(name, getattr(quota, name))
                for name in ("images", "snapshots", "public_images", "shares_per_image")
            },
        )
        cat.set_quota(tx, merged)
    return merged


def account_quota(catalog: Catalog, account_id: str) -> AccountQuotaRecord:
    with catalog.read() as tx:
        if cat_accounts.get_account(tx, account_id) is None:
            raise KilnError(errors.InvalidParameterValue, f"There is no account {account_id}.")
        return cat.get_quota(tx, account_id)


def check_image_quota(tx: Tx, account_id: str, region: str, adding: int = 1) -> None:
    """Before RegisterImage, CreateImage, CopyImage and ImportImage make ``adding`` images."""
    limit = cat.get_quota(tx, account_id).images
    if limit is None:
        return
    used = cat.count_images(tx, account_id, region)
    if used + adding > limit:
        raise KilnError(
            errors.ResourceLimitExceeded,
            f"You have reached your quota of {limit} AMIs in {region} ({used} in use).",
        )


def check_snapshot_quota(tx: Tx, account_id: str, region: str, adding: int = 1) -> None:
    """Before any rule records ``adding`` new snapshots of the account."""
    limit = cat.get_quota(tx, account_id).snapshots
    if limit is None or adding == 0:
        return
    used = cat.count_snapshots(tx, account_id, region)
    if used + adding > limit:
        raise KilnError(
            errors.SnapshotLimitExceeded,
            f"The maximum number of snapshots has been reached: account {account_id} may "
            f"have at most {limit} snapshots in {region} ({used} in use).",
        )


def check_public_image_quota(tx: Tx, account_id: str, region: str) -> None:
    """Before an image of the account becomes public."""
    limit = cat.get_quota(tx, account_id).public_images
    if limit is None:
        return
    used = cat.count_images(tx, account_id, region, public_only=True)
    if used + 1 > limit:
        raise KilnError(
            errors.ResourceLimitExceeded,
            f"You have reached your quota of {limit} public AMIs in {region}.",
        )


def check_share_quota(tx: Tx, account_id: str, image_id: str, adding: set[str]) -> None:
    """Before ``adding`` accounts are given launch permission on the image."""
    limit = cat.get_quota(tx, account_id).shares_per_image
    if limit is None:
        return
    shared = cat.shared_accounts(tx, image_id)
    total = len(shared | adding)
    if total > limit:
        raise KilnError(
            errors.ResourceLimitExceeded,
            f"You have reached your quota of {limit} accounts an AMI can be shared with "
            f"({image_id} would be shared with {total}).",
        )
