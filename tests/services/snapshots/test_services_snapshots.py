"""Snapshot and volume rules without HTTP: who sees a snapshot, and the state tables."""

from __future__ import annotations

import pytest
from services_fixtures import World

from kiln import errors
from kiln.catalog import snapshots as cat
from kiln.errors import KilnError
from kiln.services.snapshots.snapshots import DescribeSnapshotsRequest, describe_snapshots
from kiln.services.snapshots.states import (
    SNAPSHOT_TRANSITIONS,
    VOLUME_TRANSITIONS,
    SnapshotState,
    VolumeState,
    change_snapshot,
)


def test_describe_snapshots_shows_the_owner_its_snapshots_and_a_stranger_none(world: World) -> None:
    sid = world.snapshot(world.owner)
    mine = describe_snapshots(world.svc, world.owner, DescribeSnapshotsRequest(owner_ids=("self",)))
    assert [s.snapshot_id for s in mine.snapshots] == [sid]
    theirs = describe_snapshots(
        world.svc, world.stranger, DescribeSnapshotsRequest(owner_ids=("self",))
    )
    assert theirs.snapshots == ()
    with pytest.raises(KilnError) as e:
        describe_snapshots(world.svc, world.stranger, DescribeSnapshotsRequest(snapshot_ids=(sid,)))
    assert e.value.code == errors.InvalidSnapshotNotFound


def test_change_snapshot_follows_the_table(world: World) -> None:
    sid = world.snapshot(world.owner)  # recorded completed
    with world.svc.catalog.write() as tx:
        assert change_snapshot(tx, sid, SnapshotState.COMPLETED, {"progress": "100%"})
        assert not change_snapshot(tx, sid, SnapshotState.ERROR, strict=False)
        assert not change_snapshot(tx, "snap-0123456789abcdef0", SnapshotState.ERROR)
    with world.svc.catalog.write() as tx, pytest.raises(KilnError) as e:
        change_snapshot(tx, sid, SnapshotState.ERROR)
    assert e.value.code == errors.IncorrectState
    with world.svc.catalog.read() as tx:
        assert cat.snapshot_state(tx, sid) == "completed"


def test_the_tables_name_every_state_and_final_states_lead_nowhere() -> None:
    assert set(SNAPSHOT_TRANSITIONS) == set(SnapshotState)
    assert set(VOLUME_TRANSITIONS) == set(VolumeState)
    assert not SNAPSHOT_TRANSITIONS[SnapshotState.COMPLETED]
    assert not VOLUME_TRANSITIONS[VolumeState.ERROR]
