"""The instance lifecycle as one table (glance's valid_state_targets), with EC2's state codes.

    pending -> running -> stopping -> stopped -> pending ...
    any of them -> shutting-down -> terminated

A request moves an instance into a transitional state (pending, stopping, shutting-down) at
once and answers; the runtime finishes the move in the background (docs/instances.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import instances as cat_instances
from kiln.catalog.records import utc_now
from kiln.errors import KilnError
from kiln.services.marketplace.metering import meter_state_change


class InstanceState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"


S = InstanceState
CODES: dict[InstanceState, int] = {
    S.PENDING: 0,
    S.RUNNING: 16,
    S.SHUTTING_DOWN: 32,
    S.TERMINATED: 48,
    S.STOPPING: 64,
    S.STOPPED: 80,
}
TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    S.PENDING: frozenset({S.RUNNING, S.STOPPED, S.SHUTTING_DOWN, S.TERMINATED}),
    S.RUNNING: frozenset({S.STOPPING, S.STOPPED, S.SHUTTING_DOWN}),
    S.STOPPING: frozenset({S.STOPPED, S.SHUTTING_DOWN}),
    S.STOPPED: frozenset({S.PENDING, S.SHUTTING_DOWN}),
    S.SHUTTING_DOWN: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
}
#: States in which a QEMU process may exist for the instance.
VM_STATES = frozenset({S.PENDING, S.RUNNING, S.STOPPING, S.SHUTTING_DOWN})
#: Transitional states the runtime finishes in the background (and on restart).
TRANSITIONAL = frozenset({S.PENDING, S.STOPPING, S.SHUTTING_DOWN})


def code(state: str) -> int:
    return CODES[InstanceState(state)]


def sources_of(target: InstanceState) -> frozenset[InstanceState]:
    """Every state from which ``target`` may be entered."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_transition(current: str, target: InstanceState) -> bool:
    return target in TRANSITIONS[InstanceState(current)]


def check_transition(instance_id: str, current: str, target: InstanceState) -> None:
    """IncorrectInstanceState unless ``current -> target`` is in the table."""
    if not can_transition(current, target):
        raise KilnError(
            errors.IncorrectInstanceState,
            f"The instance '{instance_id}' is not in a state from which it can be "
            f"{_VERB.get(target, target.value)}.",
        )


_VERB = {
    S.PENDING: "started",
    S.STOPPING: "stopped",
    S.STOPPED: "stopped",
    S.SHUTTING_DOWN: "terminated",
    S.RUNNING: "started",
}


def change_instance(
    tx: Tx,
    instance_id: str,
    expect: Collection[str],
    target: InstanceState,
    fields: Mapping[str, object] | None = None,
) -> bool:
    """Move an instance from one of the ``expect`` states to ``target`` (compare-and-set: False
    if it has moved meanwhile). Every ``expect -> target`` must be in the table; a caller that
    asks for another move is a bug (ValueError), not a request to refuse.

    A move into ``running`` opens the instance's metered marketplace periods and any other move
    closes them, in the same transaction (kiln/services/marketplace/metering.py)."""
    bad = [s for s in expect if not can_transition(s, target)]
    if bad:
        raise ValueError(f"{instance_id}: {bad} -> {target.value} is not in TRANSITIONS")
    moved = cat_instances.update_instance(
        tx, instance_id, {**(fields or {}), "state": target.value}, expect_states=list(expect)
    )
    if moved:
        meter_state_change(tx, instance_id, target is S.RUNNING, utc_now())
    return moved
