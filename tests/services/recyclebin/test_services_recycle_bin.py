"""Recycle Bin rules without HTTP, on SQLite and PostgreSQL: which rule keeps an image, the
longest retention, held snapshots, restore, the purge at a given time, and the lock states as
the bin's clock (``Services.recycle_bin_clock``, what kiln serve --recycle-bin-clock-offset
moves) advances."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from services_fixtures import World

from kiln.catalog import images as cat_images
from kiln.catalog import snapshots as cat_snapshots
from kiln.errors import KilnError
from kiln.services.context import Services
from kiln.services.images.images import deregister_image
from kiln.services.recyclebin import images as binned
from kiln.services.recyclebin import rules
from kiln.services.snapshots.snapshots import delete_snapshot
from kiln.services.tags.tags import TagSpec

START = datetime(2027, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def at(world: World, moment: datetime) -> Services:
    return replace(world.svc, recycle_bin_clock=lambda: moment)


def code(exc: pytest.ExceptionInfo[KilnError]) -> str:
    return exc.value.code.code


def rule(world: World, days: int, **kw: object) -> str:
    req = rules.CreateRuleRequest(resource_type="EC2_IMAGE", retention_days=days, **kw)  # type: ignore[arg-type]
    return rules.create_rule(at(world, START), world.owner, req).rule_id


def image(world: World, name: str, **tags: str) -> str:
    specs = (TagSpec("image", tuple(tags.items())),) if tags else ()
    return world.register(world.owner, name, tag_specs=specs)


def in_bin(world: World) -> list[str]:
    page = binned.list_images_in_recycle_bin(world.svc, world.owner)
    return [b.image.image_id for b in page.images]


def test_tag_level_rules_keep_tagged_images_and_region_rules_skip_excluded_ones(
    world: World,
) -> None:
    rule(world, 2, resource_tags=(("bin", None),))
    svc = at(world, START)
    tagged, plain = image(world, "tagged", bin="any-value"), image(world, "plain")
    for image_id in (tagged, plain):
        deregister_image(svc, world.owner, image_id)
    assert in_bin(world) == [tagged]

    rule(world, 5, exclude_tags=(("keep", "no"),))
    both, excluded = image(world, "both", bin="x"), image(world, "excluded", keep="no")
    for image_id in (both, excluded):
        deregister_image(svc, world.owner, image_id)
    assert sorted(in_bin(world)) == sorted([tagged, both])
    exits = {
        b.image.image_id: b.entry.exit_time
        for b in binned.list_images_in_recycle_bin(world.svc, world.owner).images
    }
    assert exits[both] == "2027-01-06T00:00:00.000Z"  # the longest of the rules that keep it
    assert exits[tagged] == "2027-01-03T00:00:00.000Z"


def test_a_binned_image_holds_its_snapshots_until_the_purge(world: World) -> None:
    rule(world, 1)
    svc = at(world, START)
    image_id = image(world, "held")
    snap = cat_images_snapshot(world, image_id)
    results = deregister_image(svc, world.owner, image_id, delete_associated_snapshots=True)
    assert results == []
    with pytest.raises(KilnError) as e:
        delete_snapshot(svc, world.owner, snap, False)
    assert code(e) == "InvalidSnapshot.InUse"
    assert binned.purge_recycle_bin(svc, START + DAY / 2) == []
    assert binned.purge_recycle_bin(svc, START + DAY) == [image_id]
    assert binned.purge_recycle_bin(svc, START + 2 * DAY) == []  # idempotent
    assert in_bin(world) == []
    with world.svc.catalog.read() as tx:
        assert cat_snapshots.get_snapshot(tx, snap, world.owner.account_id) is None
        assert cat_images.image_state(tx, image_id) == "deregistered"


def cat_images_snapshot(world: World, image_id: str) -> str:
    with world.svc.catalog.read() as tx:
        found = cat_images.get_image(tx, image_id, world.owner.account_id)
    assert found is not None and found.block_devices[0].ebs is not None
    return str(found.block_devices[0].ebs.snapshot_id)


def test_restore_returns_the_prior_state_and_refuses_a_taken_name(world: World) -> None:
    rule(world, 1)
    svc = at(world, START)
    first = image(world, "same-name")
    deregister_image(svc, world.owner, first)
    second = image(world, "same-name")  # the name is free while the first is in the bin
    with pytest.raises(KilnError) as e:
        binned.restore_image_from_recycle_bin(svc, world.owner, first)
    assert code(e) == "InvalidAMIName.Duplicate"
    assert in_bin(world) == [first]
    deregister_image(svc, world.owner, second)
    binned.restore_image_from_recycle_bin(svc, world.owner, first)
    with world.svc.catalog.read() as tx:
        assert cat_images.image_state(tx, first) == "available"
    assert in_bin(world) == [second]
    assert binned.purge_recycle_bin(svc, START + 2 * DAY) == [second]  # not the restored one
    with pytest.raises(KilnError) as e:
        binned.restore_image_from_recycle_bin(svc, world.grantee, second)
    assert code(e) == "InvalidAMIID.NotFound"


def test_lock_states_follow_the_bin_clock(world: World) -> None:
    rid = rule(world, 3)
    now = at(world, START)
    rules.lock_rule(now, world.owner, rid, 7)
    with pytest.raises(KilnError) as e:
        rules.update_rule(now, world.owner, rules.UpdateRuleRequest(rid, retention_days=9))
    assert code(e) == "ConflictException"
    unlocked = rules.unlock_rule(now, world.owner, rid)
    assert unlocked.lock_end_time == "2027-01-08T00:00:00.000Z"
    assert rules.lock_state(unlocked, START + 6 * DAY) == "pending_unlock"
    with pytest.raises(KilnError) as e:
        rules.delete_rule(at(world, START + 6 * DAY), world.owner, rid)
    assert code(e) == "ConflictException"
    later = at(world, START + 7 * DAY)
    assert rules.lock_state(rules.get_rule(later, world.owner, rid), START + 7 * DAY) == "unlocked"
    assert rules.get_rule(later, world.owner, rid).retention_days == 3  # the refused update
    rules.lock_rule(later, world.owner, rid, 10)  # locks again
    with pytest.raises(KilnError) as e:
        rules.lock_rule(later, world.owner, rid, 10)
    assert code(e) == "ConflictException"


@pytest.mark.parametrize(
    ("req", "named"),
    [
        (rules.CreateRuleRequest("EBS_VOLUME", 8), "RetentionPeriodValue"),
        (rules.CreateRuleRequest("EC2_IMAGE", 0), "RetentionPeriodValue"),
        (
            rules.CreateRuleRequest(
                "EC2_IMAGE", 1, resource_tags=(("a", None),), exclude_tags=(("b", None),)
            ),
            "ExcludeResourceTags",
        ),
        (
            rules.CreateRuleRequest(
                "EC2_IMAGE", 1, resource_tags=(("a", None),), unlock_delay_days=7
            ),
            "LockConfiguration",
        ),
        (rules.CreateRuleRequest("EC2_IMAGE", 1, tags=(("aws:x", "y"),)), "aws:"),
        (rules.CreateRuleRequest("EC2_IMAGE", 1, tags=(("a", "b;c"),)), "Tags.Value"),
        (rules.CreateRuleRequest("EC2_IMAGE", 1, description="two\nlines"), "Description"),
        (
            rules.CreateRuleRequest("EC2_IMAGE", 1, resource_tags=(("k" * 129, None),)),
            "ResourceTags.ResourceTagKey",
        ),
    ],
)
def test_a_rule_that_does_not_parse_is_refused_with_the_field_named(
    world: World, req: rules.CreateRuleRequest, named: str
) -> None:
    with pytest.raises(KilnError) as e:
        rules.create_rule(world.svc, world.owner, req)
    assert code(e) == "ValidationException" and named in e.value.message
    page = rules.list_rules(world.svc, world.owner, rules.ListRulesRequest("EC2_IMAGE"))
    assert page.rules == ()


def test_a_malformed_identifier_is_a_validation_error_and_an_unknown_one_not_found(
    world: World,
) -> None:
    with pytest.raises(KilnError) as e:
        rules.get_rule(world.svc, world.owner, "short")
    assert code(e) == "ValidationException" and "Identifier" in e.value.message
    with pytest.raises(KilnError) as e:
        rules.get_rule(world.svc, world.owner, "abcdefghijk")
    assert code(e) == "ResourceNotFoundException"
