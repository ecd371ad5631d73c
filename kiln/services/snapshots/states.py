"""The snapshot and volume lifecycles as tables (like images/states.py), and the only functions
that change those states.

    snapshot:  pending -> completed | error
    volume:    creating -> available | error;  available <-> in-use

A snapshot or volume row is removed (DeleteSnapshot, DeleteVolume, terminate with
DeleteOnTermination), never moved to a ``deleted`` state.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import snapshots as cat
from kiln.errors import KilnError


class SnapshotState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    ERROR = "error"


class VolumeState(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    IN_USE = "in-use"
    ERROR = "error"


SNAPSHOT_TRANSITIONS: dict[SnapshotState, frozenset[SnapshotState]] = {
    SnapshotState.PENDING: frozenset({SnapshotState.COMPLETED, SnapshotState.ERROR}),
    SnapshotState.COMPLETED: frozenset(),
    SnapshotState.ERROR: frozenset(),
}
VOLUME_TRANSITIONS: dict[VolumeState, frozenset[VolumeState]] = {
    VolumeState.CREATING: frozenset({VolumeState.AVAILABLE, VolumeState.ERROR}),
    VolumeState.AVAILABLE: frozenset({VolumeState.IN_USE}),
    VolumeState.IN_USE: frozenset({VolumeState.AVAILABLE}),
    VolumeState.ERROR: frozenset(),
}


def can_snapshot_transition(current: str, target: SnapshotState) -> bool:
    return target in SNAPSHOT_TRANSITIONS[SnapshotState(current)]


def can_volume_transition(current: str, target: VolumeState) -> bool:
    return target in VOLUME_TRANSITIONS[VolumeState(current)]


def change_snapshot(
    tx: Tx,
    snapshot_id: str,
    target: SnapshotState,
    fields: Mapping[str, object] | None = None,
    *,
    strict: bool = True,
) -> bool:
    """Move a snapshot to ``target`` (with other ``fields``) if the table allows it;
    IncorrectState otherwise, or with ``strict=False`` (a job's failure path, which must not
    fail itself) nothing. The same state again is allowed (a resumed job repeats its last step);
    a row that is gone is left alone. True if the row changed."""
    current = cat.snapshot_state(tx, snapshot_id)
    if current is None:
        return False
    if current != target.value and not can_snapshot_transition(current, target):
        if not strict:
            return False
        raise KilnError(
            errors.IncorrectState,
            f"The snapshot '{snapshot_id}' is in state "
            f"'{current}' and cannot become '{target.value}'.",
        )
    cat.update_snapshot(tx, snapshot_id, {**(fields or {}), "state": target.value})
    return True


def change_volume(
    tx: Tx,
    volume_id: str,
    target: VolumeState,
    fields: Mapping[str, object] | None = None,
    *,
    strict: bool = True,
) -> bool:
    """Move a volume to ``target`` (with other ``fields``); see change_snapshot."""
    current = cat.volume_state(tx, volume_id)
    if current is None:
        return False
    if current != target.value and not can_volume_transition(current, target):
        if not strict:
            return False
        raise KilnError(
            errors.IncorrectState,
            f"The volume '{volume_id}' is in state '{current}' and cannot become '{target.value}'.",
        )
    cat.update_volume(tx, volume_id, {**(fields or {}), "state": target.value})
    return True
