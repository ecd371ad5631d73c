"""Running lifecycle policies: what each rule does to which image (docs/lifecycle.md#a-run).

A run of a policy:

1. takes the account's images in the policy's region that are available or disabled and that
   the selection names (families, name prefixes, tags);
2. applies its ``policyDetails`` in the order written. For each: the images an exclusion rule
   matches are set aside; the rest are ordered newest first (CreationDate, then the name's
   natural order); COUNT keeps the newest ``max(value, retainAtLeast)`` and acts on the others;
   AGE acts on those created more than ``value unit`` ago, except the newest
   ``retainAtLeast``. An image a DELETE rule deregistered is gone for the rules after it;
3. acts through the EC2 rules themselves: EnableImageDeprecation (deprecated now),
   DisableImage, DeregisterImage (with its snapshots when ``includeResources.snapshots``).
   A refusal (deregistration protection) is reported and the run goes on.

An action already in effect (an image deprecated or disabled before) is not repeated and not
reported. A dry run reports the same plan and changes nothing. One run of a policy at a time,
across processes: a run claims the policy in the catalog first and records when it started
(``last_run_at``: the scheduler's clock, so a restart neither runs a policy early nor skips it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog import lifecycle as cat
from kiln.catalog.records import ImageRecord, LifecyclePolicyRecord, ec2_time
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.images.images import (
    check_deregistration_protection,
    deregister_image,
    disable_image,
    enable_image_deprecation,
)
from kiln.services.lifecycle.policy_document import (
    Period,
    PolicyDetail,
    PolicyDocument,
    Selection,
    stored_policy,
)

log = logging.getLogger(__name__)

#: A claim older than this belongs to a run that died (a killed process): it is taken over.
STALE_CLAIM = timedelta(minutes=15)
PLANNED, DONE, SKIPPED = "planned", "done", "skipped"


@dataclass(frozen=True, slots=True)
class LifecycleAction:
    """One thing a run did (or, dry, would do) to one image."""

    policy: str
    account_id: str
    region: str
    image_id: str
    image_name: str
    creation_date: str
    action: str  # DEPRECATE | DISABLE | DELETE
    result: str  # planned (dry run) | done | skipped
    reason: str | None = None
    snapshots_deleted: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "Policy": self.policy,
            "AccountId": self.account_id,
            "Region": self.region,
            "ImageId": self.image_id,
            "ImageName": self.image_name,
            "CreationDate": self.creation_date,
            "Action": self.action,
            "Result": self.result,
            "Reason": self.reason,
            "SnapshotsDeleted": list(self.snapshots_deleted),
        }


@dataclass(frozen=True, slots=True)
class PolicyRun:
    policy: str
    account_id: str
    region: str
    started: str
    dry_run: bool
    actions: tuple[LifecycleAction, ...] = ()
    #: Why the policy did not run (another run holds it), else None.
    not_run: str | None = None


@dataclass(frozen=True, slots=True)
class _Planned:
    image: ImageRecord
    detail: PolicyDetail
    skip: str | None = None


@dataclass
class _Images:
    """The selected images and what the plan knows of them."""

    records: list[ImageRecord]
    shared_with: dict[str, set[str]] = field(default_factory=dict)


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


def _selected(selection: Selection, image: ImageRecord) -> bool:
    names = selection.families or selection.name_prefixes
    if names:
        family, _, version = image.name.rpartition("/")
        in_family = bool(version) and family in selection.families
        if not in_family and not any(image.name.startswith(p) for p in selection.name_prefixes):
            return False
    if selection.tags:
        have = {(t.key, t.value) for t in image.tags}
        if not have.intersection(selection.tags):
            return False
    return True


def _excluded(detail: PolicyDetail, image: ImageRecord, shared: set[str], now: datetime) -> bool:
    rules = detail.exclusions
    if rules.tags and {(t.key, t.value) for t in image.tags}.intersection(rules.tags):
        return True
    if rules.is_public and image.is_public:
        return True
    if image.region in rules.regions:
        return True
    if shared.intersection(rules.shared_accounts):
        return True
    if rules.last_launched is not None and image.last_launched_time:
        since = ec2_time(now - timedelta(days=rules.last_launched.days))
        if image.last_launched_time >= since:
            return True
    return False


def _in_effect(detail: PolicyDetail, image: ImageRecord, now: datetime) -> bool:
    if detail.action == "DEPRECATE":
        return image.deprecation_time is not None and image.deprecation_time <= ec2_time(now)
    if detail.action == "DISABLE":
        return image.state == "disabled"
    return False


def _affected(detail: PolicyDetail, pool: list[ImageRecord], now: datetime) -> list[ImageRecord]:
    """``pool`` (newest first) less what the detail's filter keeps."""
    if detail.filter_type == "COUNT":
        return pool[max(detail.value, detail.retain_at_least or 0) :]
    assert detail.unit is not None  # an AGE filter has a unit (policy_document.py)
    days = Period(detail.value, detail.unit).days
    cutoff = ec2_time(now - timedelta(days=days))
    return [i for i in pool[detail.retain_at_least or 0 :] if i.creation_date < cutoff]


def _load_images(tx: Tx, policy: LifecyclePolicyRecord, selection: Selection) -> _Images:
    ids = cat.lifecycle_image_ids(tx, policy.region, policy.account_id)
    records = [
        i for i in cat_images.get_images(tx, ids, policy.account_id) if _selected(selection, i)
    ]
    shared = {
        i.image_id: {p.user_id for p in cat_images.launch_permissions(tx, i.image_id) if p.user_id}
        for i in records
    }
    return _Images(records, shared)


def plan_policy(
    tx: Tx, policy: LifecyclePolicyRecord, doc: PolicyDocument, now: datetime
) -> list[_Planned]:
    """What a run of ``policy`` at ``now`` would do, in order (see the module doc)."""
    images = _load_images(tx, policy, doc.selection)
    newest_first = sorted(
        images.records, key=lambda i: (i.creation_date, _natural(i.name)), reverse=True
    )
    deleted: set[str] = set()
    planned: list[_Planned] = []
    for detail in doc.details:
        pool = [
            i
            for i in newest_first
            if i.image_id not in deleted
            and not _excluded(detail, i, images.shared_with.get(i.image_id, set()), now)
        ]
        for image in _affected(detail, pool, now):
            if _in_effect(detail, image, now):
                continue
            skip = None
            if detail.action == "DELETE":
                try:
                    check_deregistration_protection(image)
                except KilnError as e:
                    skip = f"{e.code.code}: {e.message}"
                if skip is None:
                    deleted.add(image.image_id)
            planned.append(_Planned(image, detail, skip))
    return planned


def _action(
    caller: Caller,
    policy: str,
    step: _Planned,
    outcome: str,
    reason: str | None = None,
    snapshots: Iterable[str] = (),
) -> LifecycleAction:
    return LifecycleAction(
        policy=policy,
        account_id=caller.account_id,
        region=caller.region,
        image_id=step.image.image_id,
        image_name=step.image.name,
        creation_date=step.image.creation_date,
        action=step.detail.action,
        result=outcome,
        reason=reason,
        snapshots_deleted=tuple(snapshots),
    )


def _act(
    services: Services, caller: Caller, policy: str, step: _Planned, now: datetime
) -> LifecycleAction:
    """Do one planned step through the EC2 rule; a refusal is reported, not raised."""
    if step.skip is not None:
        return _action(caller, policy, step, SKIPPED, step.skip)
    image_id = step.image.image_id
    try:
        if step.detail.action == "DEPRECATE":
            enable_image_deprecation(services, caller, image_id, now, False)
        elif step.detail.action == "DISABLE":
            disable_image(services, caller, image_id, False)
        else:
            outcomes = deregister_image(services, caller, image_id, step.detail.delete_snapshots)
            kept = [
                f"{o.snapshot_id} {o.return_code}" for o in outcomes if o.return_code != "success"
            ]
            done = [o.snapshot_id for o in outcomes if o.return_code == "success"]
            reason = "snapshots kept: " + ", ".join(kept) if kept else None
            return _action(caller, policy, step, DONE, reason, done)
    except KilnError as e:
        return _action(caller, policy, step, SKIPPED, f"{e.code.code}: {e.message}")
    return _action(caller, policy, step, DONE)


def run_policy(
    services: Services, policy: LifecyclePolicyRecord, *, now: datetime, dry_run: bool
) -> PolicyRun:
    """One run of ``policy`` (dry: its plan, nothing changed)."""
    doc = stored_policy(policy.document, policy.selection)
    started = ec2_time(now)
    caller = Caller(policy.account_id, policy.region)
    run = PolicyRun(policy.name, policy.account_id, policy.region, started, dry_run)
    if dry_run:
        with services.catalog.read() as tx:
            steps = plan_policy(tx, policy, doc, now)
        planned = [
            _action(caller, policy.name, s, SKIPPED if s.skip else PLANNED, s.skip) for s in steps
        ]
        return replace(run, actions=tuple(planned))
    with services.catalog.write() as tx:
        claimed = cat.claim_lifecycle_run(
            tx, policy.account_id, policy.region, policy.name, started, ec2_time(now - STALE_CLAIM)
        )
    if not claimed:
        return replace(run, not_run="another run of the policy is in progress")
    actions: list[LifecycleAction] = []
    try:
        with services.catalog.read() as tx:
            steps = plan_policy(tx, policy, doc, now)
        for step in steps:
            actions.append(_act(services, caller, policy.name, step, now))
    finally:
        summary = {"StartedAt": started, "Actions": [a.as_json() for a in actions]}
        with services.catalog.write() as tx:
            cat.finish_lifecycle_run(
                tx, policy.account_id, policy.region, policy.name, started, summary
            )
    log.info(
        "lifecycle %s (%s, %s): run started %s, %d action(s)",
        policy.name,
        policy.account_id,
        policy.region,
        started,
        len(actions),
    )
    for a in actions:
        log.info(
            "lifecycle %s: %s %s (%s) %s%s",
            policy.name,
            a.action,
            a.image_id,
            a.image_name,
            a.result,
            f": {a.reason}" if a.reason else "",
        )
    return replace(run, actions=tuple(actions))


def run_lifecycle_policies(
    services: Services,
    *,
    dry_run: bool = False,
    account_id: str | None = None,
    region: str | None = None,
    name: str | None = None,
    now: datetime | None = None,
) -> list[PolicyRun]:
    """Run every ENABLED policy (of one account, region or name if given) once, now."""
    moment = now or datetime.now(UTC)
    with services.catalog.read() as tx:
        policies = cat.list_lifecycle_policies(tx, account_id, region)
    return [
        run_policy(services, p, now=moment, dry_run=dry_run)
        for p in policies
        if p.status == "ENABLED" and (name is None or p.name == name)
    ]


def run_due_lifecycle_policies(
    services: Services, interval: timedelta, now: datetime | None = None
) -> list[PolicyRun]:
    """The scheduler's tick (kiln serve): run each ENABLED policy whose last run started at
    least ``interval`` ago, or that never ran."""
    moment = now or datetime.now(UTC)
    due_before = ec2_time(moment - interval)
    with services.catalog.read() as tx:
        policies = cat.list_lifecycle_policies(tx)
    runs: list[PolicyRun] = []
    for p in policies:
        if p.status != "ENABLED" or (p.last_run_at is not None and p.last_run_at > due_before):
            continue
        try:
            runs.append(run_policy(services, p, now=moment, dry_run=False))
        except KilnError as e:  # one policy's failure does not stop the others
            log.warning("lifecycle %s (%s, %s): %s", p.name, p.account_id, p.region, e.message)
    return runs
