"""Who may see and who may change a snapshot, and the records the snapshot rules share."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import snapshots as cat
from kiln.catalog.records import SnapshotRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.validate import id_prefix

GIB = 1024**3
#: EC2 shows this volume id on snapshots that were not taken of a volume (copies, imports).
NO_VOLUME = "vol-ffffffff"


def check_snapshot_id(value: str) -> str:
    if id_prefix(value) != "snap":
        raise KilnError(
            errors.InvalidSnapshotIDMalformed, f'Invalid id: "{value}" (expecting "snap-...")'
        )
    return value


def not_found(snapshot_ids: list[str]) -> KilnError:
    return KilnError(
        errors.InvalidSnapshotNotFound, f"The snapshot '{', '.join(snapshot_ids)}' does not exist."
    )


def visible_snapshot(tx: Tx, caller: Caller, snapshot_id: str) -> SnapshotRecord:
    """The snapshot if ``caller`` may see it in its region (owner, granted, or public)."""
    check_snapshot_id(snapshot_id)
    snap = cat.get_snapshot(tx, snapshot_id, caller.account_id)
    if (
        snap is None
        or snap.region != caller.region
        or not cat.snapshot_visible(tx, snapshot_id, caller.account_id)
    ):
        raise not_found([snapshot_id])
    return snap


def owned_snapshot(
    tx: Tx, caller: Caller, snapshot_id: str, dry_run: bool = False
) -> SnapshotRecord:
    """The snapshot if ``caller`` owns it; a visible one of another account is AuthFailure
    (UnauthorizedOperation to a dry run), an invisible one InvalidSnapshot.NotFound."""
    snap = visible_snapshot(tx, caller, snapshot_id)
    if snap.owner_id != caller.account_id:
        if dry_run:
            raise KilnError(
                errors.UnauthorizedOperation, "You are not authorized to perform this operation."
            )
        raise KilnError(
            errors.NotAuthorizedForResource, f"Not authorized for snapshot:{snapshot_id}"
        )
    return snap


def completed_snapshot(tx: Tx, caller: Caller, snapshot_id: str) -> SnapshotRecord:
    snap = visible_snapshot(tx, caller, snapshot_id)
    if snap.state != "completed":
        raise KilnError(
            errors.IncorrectState,
            f"Snapshot '{snapshot_id}' is in state '{snap.state}', not 'completed'.",
        )
    return snap


def size_gib(virtual_size: int) -> int:
    """A disk's size as EC2 volume sizes count it: whole GiB, rounded up, at least 1."""
    return max(1, math.ceil(virtual_size / GIB))


def parse_time(text: str | None) -> datetime | None:
    """A catalog timestamp (``2026-11-23T19:08:02.000Z``) as an aware datetime."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
