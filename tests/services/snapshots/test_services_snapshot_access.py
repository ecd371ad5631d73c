"""Who may see a snapshot is one SQL definition (catalog/snapshots.py ``visible_to``) used by the
single-snapshot lookup every action goes through (``visible_snapshot``) and by DescribeSnapshots.
This test holds the two paths to the same answer for every kind of snapshot and caller."""

from __future__ import annotations

from services_fixtures import World

from kiln.catalog.snapshots import SnapshotPermissionRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.snapshots.access import visible_snapshot
from kiln.services.snapshots.snapshot_attributes import (
    ModifySnapshotAttributeRequest,
    modify_snapshot_attribute,
)
from kiln.services.snapshots.snapshots import (
    DescribeSnapshotsRequest,
    delete_snapshot,
    describe_snapshots,
)


def _share(world: World, snapshot_id: str, *perms: SnapshotPermissionRecord) -> None:
    modify_snapshot_attribute(
        world.svc,
        world.owner,
        ModifySnapshotAttributeRequest(
            snapshot_id, "createVolumePermission", "add", add=tuple(perms)
        ),
    )


def _one_by_one(world: World, who: Caller, ids: tuple[str, ...]) -> set[str]:
    seen = set()
    with world.svc.catalog.read() as tx:
        for sid in ids:
            try:
                seen.add(visible_snapshot(tx, who, sid).snapshot_id)
            except KilnError:
                pass
    return seen


def test_single_lookups_and_describe_agree_on_who_may_see_a_snapshot(world: World) -> None:
    o, g = world.owner, world.grantee
    private = world.snapshot(o)
    public = world.snapshot(o)
    _share(world, public, SnapshotPermissionRecord(group="all"))
    shared = world.snapshot(o)
    _share(world, shared, SnapshotPermissionRecord(user_id=g.account_id))
    gone = world.snapshot(o)
    _share(world, gone, SnapshotPermissionRecord(group="all"))
    delete_snapshot(world.svc, o, gone, False)
    elsewhere = world.snapshot(Caller(o.account_id, "eu-west-1"))
    theirs = world.snapshot(world.stranger)
    ids = (private, public, shared, gone, elsewhere, theirs)
    expected = {
        o.account_id: {private, public, shared},
        g.account_id: {public, shared},
        world.stranger.account_id: {public, theirs},
    }
    for who in (o, g, world.stranger):
        listed = describe_snapshots(world.svc, who, DescribeSnapshotsRequest())
        described = {s.snapshot_id for s in listed.snapshots} & set(ids)
        assert _one_by_one(world, who, ids) == described == expected[who.account_id], who
