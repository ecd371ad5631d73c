"""Record a snapshot that is already in a region's store as an EC2 snapshot in the catalog.

Used by ``kiln snapshot import --account`` and by the import jobs once their data is stored:
the catalog row is written only after the store holds the complete manifest
(see docs/storage-format.md#write-order), so a catalog snapshot always has its bytes.
"""

from __future__ import annotations

from kiln import errors
from kiln.catalog import Catalog
from kiln.catalog import accounts as cat_accounts
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import SnapshotRecord, utc_now
from kiln.errors import KilnError

GIB = 1024**3


def record_snapshot(
    catalog: Catalog,
    region: str,
    account_id: str,
    snapshot_id: str,
    virtual_size: int,
    *,
    description: str | None = None,
    encrypted: bool = False,
    kms_key_id: str | None = None,
    data_key_id: str | None = None,
    volume_id: str | None = None,
    parent_snapshot_id: str | None = None,
) -> SnapshotRecord:
    """Insert a ``completed`` snapshot row for bytes the store already holds."""
    snap = SnapshotRecord(
        snapshot_id=snapshot_id,
        region=region,
        owner_id=account_id,
        volume_size=max(1, -(-virtual_size // GIB)),
        full_size_bytes=virtual_size,
        state="completed",
        progress="100%",
        start_time=utc_now(),
        completion_time=utc_now(),
        description=description,
        encrypted=encrypted,
        kms_key_id=kms_key_id,
        data_key_id=data_key_id,
        volume_id=volume_id or "vol-ffffffff",
        parent_snapshot_id=parent_snapshot_id,
    )
    with catalog.write() as tx:
        if cat_accounts.get_account(tx, account_id) is None:
            raise KilnError(errors.InvalidParameterValue, f"no account {account_id}")
        cat_snapshots.insert_snapshot(tx, snap)
    return snap
