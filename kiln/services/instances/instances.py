"""StartInstances, StopInstances, RebootInstances, TerminateInstances.

Each checks every id first (one unknown id fails the whole request, as on EC2), moves the
instances to their transitional state in one transaction, answers with the state changes, and
leaves the VM work to the runtime (kiln/services/instances/lifecycle.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from kiln import errors
from kiln.catalog import instances as cat
from kiln.catalog.instances import InstanceRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.instances.access import owned_instances
from kiln.services.instances.lifecycle import (
    USER_SHUTDOWN,
    hidden_before,
    reboot,
    submit_converge,
    user_initiated,
)
from kiln.services.instances.states import InstanceState, change_instance, check_transition
from kiln.services.instances.vm_launch import runtime_of
from kiln.services.marketplace.access import require_subscriptions
from kiln.services.validate import dry_run

log = logging.getLogger(__name__)

S = InstanceState


@dataclass(frozen=True, slots=True)
class StateChange:
    instance_id: str
    previous: str
    current: str


def _load(services: Services, caller: Caller, ids: Sequence[str]) -> list[InstanceRecord]:
    runtime_of(services)
    with services.catalog.read() as tx:
        return owned_instances(tx, caller, ids, hidden_before())


def _apply(
    services: Services,
    targets: list[tuple[InstanceRecord, str, dict[str, object]]],
) -> list[StateChange]:
    """Write each (instance, new state, extra changes) if the state is still what was read;
    an instance that moved meanwhile is reported as it is now."""
    changes = []
    with services.catalog.write() as tx:
        for inst, target, extra in targets:
            if target != inst.state:
                change_instance(tx, inst.instance_id, [inst.state], InstanceState(target), extra)
            now = cat.get_instance(tx, inst.instance_id, "")
            changes.append(StateChange(inst.instance_id, inst.state, now.state if now else target))
    return changes


def start_instances(
    services: Services, caller: Caller, ids: Sequence[str], dry_run_flag: bool
) -> list[StateChange]:
    insts = _load(services, caller, ids)
    for i in insts:
        if i.state not in (S.RUNNING, S.PENDING):
            check_transition(i.instance_id, i.state, S.PENDING)
    dry_run(dry_run_flag)
    with services.catalog.read() as tx:  # a product's instance starts only while subscribed
        for i in insts:
            if i.state == S.STOPPED:
                require_subscriptions(tx, caller.account_id, i.product_codes)
    if any(i.state == S.STOPPED for i in insts):
        runtime_of(services).check_available()
    out = _apply(
        services,
        [
            (
                i,
                S.PENDING.value if i.state == S.STOPPED else i.state,
                {
                    "state_reason_code": None,
                    "state_reason_message": None,
                    "state_transition_reason": "",
                },
            )
            for i in insts
        ],
    )
    for c in out:
        if c.previous == S.STOPPED:
            submit_converge(services, c.instance_id, "start")
    return out


def stop_instances(
    services: Services,
    caller: Caller,
    ids: Sequence[str],
    force: bool,
    hibernate: bool,
    dry_run_flag: bool,
) -> list[StateChange]:
    insts = _load(services, caller, ids)
    if hibernate:
        raise KilnError(errors.UnsupportedOperation, "Kiln instances cannot hibernate.")
    for i in insts:
        if i.root_device_type != "ebs":
            raise KilnError(
                errors.UnsupportedOperation,
                f"The instance '{i.instance_id}' does not have an 'ebs' root device "
                "type and cannot be stopped.",
            )
        if i.state not in (S.STOPPING, S.STOPPED):
            check_transition(i.instance_id, i.state, S.STOPPING)
    dry_run(dry_run_flag)
    runtime = runtime_of(services)
    if force:
        runtime.forced.update(i.instance_id for i in insts)
    out = _apply(
        services,
        [
            (
                i,
                S.STOPPING.value if i.state == S.RUNNING else i.state,
                {
                    "state_transition_reason": user_initiated(),
                    "state_reason_code": USER_SHUTDOWN[0],
                    "state_reason_message": USER_SHUTDOWN[1],
                },
            )
            for i in insts
        ],
    )
    for c in out:
        if c.current == S.STOPPING:
            submit_converge(services, c.instance_id, "stop")
    return out


def terminate_instances(
    services: Services, caller: Caller, ids: Sequence[str], dry_run_flag: bool
) -> list[StateChange]:
    insts = _load(services, caller, ids)
    for i in insts:
        if i.disable_api_termination and i.state != S.TERMINATED:
            raise KilnError(
                errors.OperationNotPermitted,
                f"The instance '{i.instance_id}' may not be terminated. Modify its "
                "'disableApiTermination' instance attribute and try again.",
            )
    dry_run(dry_run_flag)
    out = _apply(
        services,
        [
            (
                i,
                i.state if i.state in (S.TERMINATED, S.SHUTTING_DOWN) else S.SHUTTING_DOWN.value,
                {
                    "state_transition_reason": user_initiated(),
                    "state_reason_code": USER_SHUTDOWN[0],
                    "state_reason_message": USER_SHUTDOWN[1],
                },
            )
            for i in insts
        ],
    )
    for c in out:
        if c.current == S.SHUTTING_DOWN:
            submit_converge(services, c.instance_id, "terminate")
    return out


def reboot_instances(
    services: Services, caller: Caller, ids: Sequence[str], dry_run_flag: bool
) -> None:
    insts = _load(services, caller, ids)
    for i in insts:
        if i.state not in (S.RUNNING, S.PENDING):
            raise KilnError(
                errors.IncorrectInstanceState,
                f"The instance '{i.instance_id}' is not in a state from which it can be rebooted.",
            )
    dry_run(dry_run_flag)
    runtime = runtime_of(services)
    for i in insts:
        if i.state == S.RUNNING:
            runtime.submit(i.instance_id, partial(reboot, services, i.instance_id), "reboot")
