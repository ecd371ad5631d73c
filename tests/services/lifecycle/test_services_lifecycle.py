"""Lifecycle policies' rules on a real catalog (both dialects): the document's checks, the
plan (count, age, retainAtLeast, exclusions, order), the EC2 rules it acts through, dry runs
and the scheduler's clock across a restart (docs/lifecycle.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from services_fixtures import REGION, World

from kiln.app import build_services
from kiln.catalog import images as cat_images
from kiln.catalog import lifecycle as cat
from kiln.catalog.records import ImageRecord, LaunchPermissionRecord, ec2_time
from kiln.config import Settings
from kiln.errors import KilnError
from kiln.services.images.image_attributes import (
    ModifyImageAttributeRequest,
    modify_image_attribute,
)
from kiln.services.images.images import enable_image_deregistration_protection
from kiln.services.lifecycle.policies import (
    apply_lifecycle_policy,
    delete_lifecycle_policy,
    list_lifecycle_policies,
)
from kiln.services.lifecycle.runs import (
    STALE_CLAIM,
    run_due_lifecycle_policies,
    run_lifecycle_policies,
)
from kiln.services.tags.tags import create_tags


def policy(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "keep-two",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [
            {"action": {"type": "DEPRECATE"}, "filter": {"type": "COUNT", "value": 2}},
            {
                "action": {"type": "DELETE", "includeResources": {"snapshots": True}},
                "filter": {"type": "COUNT", "value": 3},
            },
        ],
        "resourceSelection": {"families": ["app"]},
    }
    doc.update(over)
    return doc


def apply(world: World, doc: object) -> None:
    apply_lifecycle_policy(world.svc, world.owner, json.dumps(doc))


def images(world: World, *names: str) -> list[str]:
    return [world.register(world.owner, n) for n in names]


def image(world: World, image_id: str) -> ImageRecord:
    with world.svc.catalog.read() as tx:
        found = cat_images.get_image(tx, image_id, world.owner.account_id)
    assert found is not None
    return found


def test_count_deprecates_then_deletes_all_but_the_newest(world: World) -> None:
    ids = images(world, "app/1", "app/2", "app/3", "app/4", "app/5", "other/1", "app/x/1")
    apply(world, policy())
    (run,) = run_lifecycle_policies(world.svc)
    done = [(a.action, a.image_id, a.result) for a in run.actions]
    # Newest first: app/5, app/4 kept; app/3..1 deprecated; app/2, app/1 deleted.
    assert done == [
        ("DEPRECATE", ids[2], "done"),
        ("DEPRECATE", ids[1], "done"),
        ("DEPRECATE", ids[0], "done"),
        ("DELETE", ids[1], "done"),
        ("DELETE", ids[0], "done"),
    ]
    assert [image(world, i).state for i in ids] == [
        "deregistered",
        "deregistered",
        "available",
        "available",
        "available",
        "available",
        "available",
    ]
    assert image(world, ids[2]).deprecation_time is not None
    assert image(world, ids[6]).deprecation_time is None  # of the family app/x
    assert image(world, ids[3]).deprecation_time is None
    assert image(world, ids[5]).deprecation_time is None  # another family
    snap = image(world, ids[0]).block_devices[0].ebs
    assert snap is not None and run.actions[4].snapshots_deleted == (snap.snapshot_id,)
    # A second run finds everything in effect already.
    (again,) = run_lifecycle_policies(world.svc)
    assert again.actions == ()


def test_dry_run_reports_the_plan_and_changes_nothing(world: World) -> None:
    ids = images(world, "app/1", "app/2", "app/3", "app/4")
    apply(world, policy())
    (dry,) = run_lifecycle_policies(world.svc, dry_run=True)
    assert [(a.action, a.image_id, a.result) for a in dry.actions] == [
        ("DEPRECATE", ids[1], "planned"),
        ("DEPRECATE", ids[0], "planned"),
        ("DELETE", ids[0], "planned"),
    ]
    assert all(image(world, i).state == "available" for i in ids)
    assert all(image(world, i).deprecation_time is None for i in ids)
    (p,) = list_lifecycle_policies(world.svc)
    assert p.last_run_at is None


def test_age_with_retain_at_least_and_a_tag_exclusion(world: World) -> None:
    ids = images(world, "web-1", "web-2", "web-3", "web-4")
    create_tags(world.svc, world.owner, [ids[0]], [("keep", "yes")], False)
    apply(
        world,
        policy(
            name="old-web",
            policyDetails=[
                {
                    "action": {"type": "DISABLE"},
                    "filter": {"type": "AGE", "value": 2, "unit": "WEEKS", "retainAtLeast": 1},
                    "exclusionRules": {"tagMap": {"keep": "yes"}},
                }
            ],
            resourceSelection={"namePrefixes": ["web-"]},
        ),
    )
    (now,) = run_lifecycle_policies(world.svc, dry_run=True)
    assert now.actions == ()  # nothing is two weeks old yet
    later = datetime.now(UTC) + timedelta(days=15)
    (run,) = run_lifecycle_policies(world.svc, now=later)
    # web-4 is the one retained, web-1 is excluded by its tag.
    assert [(a.action, a.image_id) for a in run.actions] == [
        ("DISABLE", ids[2]),
        ("DISABLE", ids[1]),
    ]
    assert [image(world, i).state for i in ids] == [
        "available",
        "disabled",
        "disabled",
        "available",
    ]


def test_deregistration_protection_is_skipped_and_reported(world: World) -> None:
    ids = images(world, "app/1", "app/2")
    enable_image_deregistration_protection(world.svc, world.owner, ids[0], False, False)
    apply(
        world,
        policy(
            policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 1}}]
        ),
    )
    (dry,) = run_lifecycle_policies(world.svc, dry_run=True)
    assert [(a.image_id, a.result) for a in dry.actions] == [(ids[0], "skipped")]
    (run,) = run_lifecycle_policies(world.svc)
    (a,) = run.actions
    assert (a.image_id, a.result) == (ids[0], "skipped")
    assert a.reason is not None and "deregistration protection" in a.reason
    assert image(world, ids[0]).state == "available"


def test_shared_and_tag_selection(world: World) -> None:
    ids = images(world, "svc-a", "svc-b", "svc-c")
    create_tags(world.svc, world.owner, ids, [("team", "blue")], False)
    modify_image_attribute(
        world.svc,
        world.owner,
        ModifyImageAttributeRequest(
            ids[0], add=(LaunchPermissionRecord(user_id=world.grantee.account_id),)
        ),
    )
    apply(
        world,
        policy(
            policyDetails=[
                {
                    "action": {"type": "DELETE"},
                    "filter": {"type": "COUNT", "value": 1},
                    "exclusionRules": {"amis": {"sharedAccounts": [world.grantee.account_id]}},
                }
            ],
            resourceSelection={"tagMap": {"team": "blue"}},
        ),
    )
    (run,) = run_lifecycle_policies(world.svc)
    assert [a.image_id for a in run.actions] == [ids[1]]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ("{not json", "neither valid JSON nor YAML"),
        ("- a list", "a mapping"),
        (policy(name=None), "'name'"),
        (policy(name="x"), "name"),
        (policy(resourceType="CONTAINER_IMAGE"), "resourceType"),
        (policy(policyDetails=[]), "policyDetails"),
        (
            policy(policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT"}}]),
            "policyDetails.1.filter.value",
        ),
        (
            policy(
                policyDetails=[
                    {"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": "3"}}
                ]
            ),
            "policyDetails.1.filter.value",
        ),
        (
            policy(
                policyDetails=[
                    {"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 0}}
                ]
            ),
            "policyDetails.1.filter.value",
        ),
        (
            policy(
                policyDetails=[
                    {
                        "action": {"type": "DELETE"},
                        "filter": {"type": "COUNT", "value": 2, "retainAtleast": 1},
                    }
                ]
            ),
            "policyDetails.1.filter.retainAtleast",
        ),
        (
            policy(
                policyDetails=[
                    {"action": {"type": "DELETE"}, "filter": {"type": "AGE", "value": 2}}
                ]
            ),
            "policyDetails.1.filter.unit",
        ),
        (
            policy(
                policyDetails=[
                    {"action": {"type": "ERASE"}, "filter": {"type": "COUNT", "value": 2}}
                ]
            ),
            "policyDetails.1.action.type",
        ),
        (
            policy(
                policyDetails=[
                    {"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 2}},
                    {"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 3}},
                ]
            ),
            "policyDetails.2.action.type",
        ),
        (policy(resourceSelection={}), "resourceSelection"),
        (policy(resourceSelection={"families": ["/bad/"]}), "resourceSelection.families"),
        (
            policy(resourceSelection={"recipes": [{"name": "r1", "semanticVersion": "1.x.x"}]}),
            "resourceSelection.recipes",
        ),
        (policy(status="ON"), "status"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field_and_changes_nothing(
    world: World, doc: object, field: str
) -> None:
    apply(world, policy(name="existing"))
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(KilnError) as e:
        apply_lifecycle_policy(world.svc, world.owner, text)
    assert e.value.code.code == "InvalidParameterValueException"
    assert field in e.value.message
    assert "\n" not in e.value.message
    assert [p.name for p in list_lifecycle_policies(world.svc)] == ["existing"]


def test_yaml_documents_and_replacing_a_policy(world: World) -> None:
    text = """
name: keep-two
description: the newest two of app
resourceType: AMI_IMAGE
status: DISABLED
policyDetails:
  - action: {type: DELETE}
    filter: {type: COUNT, value: 2}
resourceSelection:
  families: [app]
"""
    made = apply_lifecycle_policy(world.svc, world.owner, text)
    assert made.created and made.policy.status == "DISABLED"
    assert made.policy.selection == {"families": ["app"]}
    assert made.policy.document["resourceSelection"] == {}  # botocore's shape only
    assert made.policy.arn == (
        f"arn:aws:imagebuilder:{REGION}:{world.owner.account_id}:lifecycle-policy/keep-two"
    )
    images(world, "app/1", "app/2", "app/3")
    assert run_lifecycle_policies(world.svc) == []  # disabled policies do not run
    again = apply_lifecycle_policy(world.svc, world.owner, text.replace("DISABLED", "ENABLED"))
    assert not again.created
    (run,) = run_lifecycle_policies(world.svc)
    assert len(run.actions) == 1
    delete_lifecycle_policy(world.svc, world.owner, "keep-two")
    with pytest.raises(KilnError) as e:
        delete_lifecycle_policy(world.svc, world.owner, "keep-two")
    assert e.value.code.code == "ResourceNotFoundException"


def test_the_scheduler_clock_survives_a_restart(world: World, tmp_path: Path) -> None:
    ids = images(world, "app/1", "app/2")
    apply(
        world,
        policy(
            policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 1}}]
        ),
    )
    hour = timedelta(hours=1)
    t0 = datetime.now(UTC)
    (first,) = run_due_lifecycle_policies(world.svc, hour, now=t0)  # never ran: due
    assert [a.image_id for a in first.actions] == [ids[0]]
    # A new server on the same catalog (a restart) reads the last run from the catalog.
    restarted = build_services(
        Settings(data_dir=tmp_path / "again", regions=(REGION, "eu-west-1")),
        catalog=world.svc.catalog,
        compute=None,
    )
    world.register(world.owner, "app/3")
    assert run_due_lifecycle_policies(restarted, hour, now=t0 + hour - timedelta(seconds=1)) == []
    (second,) = run_due_lifecycle_policies(restarted, hour, now=t0 + hour)
    assert [a.image_id for a in second.actions] == [ids[1]]
    (p,) = list_lifecycle_policies(restarted)
    assert p.last_run is not None and p.last_run["Actions"][0]["ImageId"] == ids[1]


def test_one_run_at_a_time(world: World) -> None:
    images(world, "app/1", "app/2", "app/3")
    apply(world, policy())
    now = datetime.now(UTC)
    with world.svc.catalog.write() as tx:  # another process's run holds the policy
        assert cat.claim_lifecycle_run(
            tx,
            world.owner.account_id,
            REGION,
            "keep-two",
            ec2_time(now),
            ec2_time(now - STALE_CLAIM),
        )
    (run,) = run_lifecycle_policies(world.svc, now=now)
    assert run.not_run is not None and run.actions == ()
    # A claim older than STALE_CLAIM is a dead run's: it is taken over.
    (late,) = run_lifecycle_policies(world.svc, now=now + STALE_CLAIM + timedelta(seconds=1))
    assert late.not_run is None and len(late.actions) == 1


def test_an_unknown_account_or_region_is_refused(world: World) -> None:
    from kiln.services.context import Caller

    for caller in (Caller("999999999999", REGION), Caller(world.owner.account_id, "mars-1")):
        with pytest.raises(KilnError) as e:
            apply_lifecycle_policy(world.svc, caller, json.dumps(policy()))
        assert e.value.code.code == "InvalidParameterValueException"
    assert list_lifecycle_policies(world.svc) == []


def test_a_policy_that_no_longer_parses_does_not_stop_the_others(world: World) -> None:
    ids = images(world, "app/1", "app/2")
    apply(world, policy(name="a-broken"))
    apply(
        world,
        policy(
            name="b-good",
            policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 1}}],
        ),
    )
    with world.svc.catalog.write() as tx:  # a stored document an older Kiln accepted
        cat.put_lifecycle_policy(
            tx,
            world.owner.account_id,
            REGION,
            "a-broken",
            arn="arn",
            status="ENABLED",
            document={**policy(name="a-broken"), "resourceType": "CONTAINER_IMAGE"},
            selection={},
            now=ec2_time(datetime.now(UTC)),
        )
    (run,) = run_due_lifecycle_policies(world.svc, timedelta(hours=1))
    assert run.policy == "b-good" and [a.image_id for a in run.actions] == [ids[0]]
