"""Finishing state changes in the background: boot, stop, terminate, reboot; the watcher that
notices a guest that powered itself off; and the reconciliation when ``kiln serve`` starts.

Each step runs under the instance's lock (InstanceRuntime.submit), re-reads the instance and
acts on the state it finds (``converge``), so a step submitted twice, or after a restart,
does the right thing. Every outcome is written to the catalog: an instance is never shown
running without a VM, nor pending forever (docs/instances.md#lifecycle).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from kiln.catalog import instances as cat
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import snapshots as cat_volumes
from kiln.catalog.instances import InstanceRecord
from kiln.catalog.records import VolumeRecord, ec2_time, utc_now
from kiln.errors import KilnError
from kiln.services.context import Services
from kiln.services.instances import vm_network
from kiln.services.instances.states import VM_STATES, InstanceState, change_instance
from kiln.services.instances.vm_launch import (
    discard_disks,
    forget_run_dir,
    instance_dir,
    prepare_disks,
    runtime_of,
    start_vm,
    stop_vm,
    vm_running,
)
from kiln.services.keys import kms_access, kms_state
from kiln.services.snapshots.states import VolumeState, change_volume

log = logging.getLogger(__name__)

S = InstanceState
STOP_TIMEOUT_S = 60.0  # ACPI shutdown before the plug is pulled (StopInstances)
TERMINATE_TIMEOUT_S = 10.0
REBOOT_TIMEOUT_S = 30.0
TERMINATED_VISIBLE = timedelta(hours=1)  # EC2 lists terminated instances for about an hour

USER_SHUTDOWN = (
    "Client.UserInitiatedShutdown",
    "Client.UserInitiatedShutdown: User initiated shutdown",
)
GUEST_SHUTDOWN = (
    "Client.InstanceInitiatedShutdown",
    "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
)

#: Key of a job's result naming the instance it shut down and will boot again (CreateImage).
RESTART_INSTANCE = "restart_instance"


def internal_error(message: str) -> tuple[str, str]:
    return ("Server.InternalError", f"Server.InternalError: {message}")


def user_initiated() -> str:
    return f"User initiated ({datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S GMT')})"


def hidden_before() -> str:
    """Terminated before this moment: no longer listed."""
    return ec2_time(datetime.now(UTC) - TERMINATED_VISIBLE)


def _read(services: Services, instance_id: str) -> tuple[InstanceRecord | None, list[VolumeRecord]]:
    with services.catalog.read() as tx:
        inst = cat.get_instance(tx, instance_id, "")
        vols = cat.volumes_of_instances(tx, [instance_id]).get(instance_id, [])
    return inst, vols


def _set(
    services: Services,
    instance_id: str,
    expect: Collection[str],
    reason: tuple[str, str] | None = None,
    **changes: object,
) -> bool:
    if reason is not None:
        changes.update(state_reason_code=reason[0], state_reason_message=reason[1])
    with services.catalog.write() as tx:
        if "state" in changes:
            target = S(str(changes.pop("state")))
            return change_instance(tx, instance_id, expect, target, changes)
        return cat.update_instance(tx, instance_id, changes, expect_states=expect)


def submit_converge(services: Services, instance_id: str, what: str) -> None:
    runtime_of(services).submit(instance_id, lambda: converge(services, instance_id), what)


def converge(services: Services, instance_id: str) -> None:
    """Finish whatever transitional state the instance is in (call under its lock)."""
    inst, vols = _read(services, instance_id)
    if inst is None:
        return
    if inst.state == S.PENDING:
        _boot(services, inst, vols)
    elif inst.state == S.STOPPING:
        _stop(services, inst)
    elif inst.state == S.SHUTTING_DOWN:
        _terminate(services, inst, vols)


def _boot(services: Services, inst: InstanceRecord, vols: list[VolumeRecord]) -> None:
    iid = inst.instance_id
    try:
        if not vm_running(services, inst):
            kms_state.require_usable_volumes(services.catalog, vols)  # issue 9: key states
            kms_access.require_volume_access(services.catalog, vols)  # grants (docs/kms.md)
            disks = prepare_disks(services, inst, vols)
            start_vm(services, inst, disks)
    except Exception as e:
        message = e.message if isinstance(e, KilnError) else "internal error (see the server log)"
        if not isinstance(e, KilnError):
            log.exception("%s: boot failed", iid)
        else:
            log.warning("%s: boot failed: %s", iid, message)
        reason = (
            kms_state.boot_failure_reason(e)
            or kms_access.boot_failure_reason(e)
            or internal_error(message)
        )
        if inst.boot_count == 0:  # a launch that never ran: EC2 terminates it
            if _set(services, iid, [S.PENDING], reason, state=S.SHUTTING_DOWN.value):
                fresh, vols = _read(services, iid)
                if fresh is not None:
                    _terminate(services, fresh, vols)
        else:
            _set(services, iid, [S.PENDING], reason, state=S.STOPPED.value)
        return
    if _set(
        services,
        iid,
        [S.PENDING],
        None,
        state=S.RUNNING.value,
        state_reason_code=None,
        state_reason_message=None,
        state_transition_reason="",
        boot_count=inst.boot_count + 1,
    ):
        log.info("%s: running", iid)


def _stop(services: Services, inst: InstanceRecord) -> None:
    runtime = runtime_of(services)
    force = inst.instance_id in runtime.forced
    stop_vm(services, inst, STOP_TIMEOUT_S, force)
    runtime.forced.discard(inst.instance_id)
    if _set(services, inst.instance_id, [S.STOPPING], USER_SHUTDOWN, state=S.STOPPED.value):
        log.info("%s: stopped%s", inst.instance_id, " (forced)" if force else "")


def _terminate(services: Services, inst: InstanceRecord, vols: list[VolumeRecord]) -> None:
    stop_vm(services, inst, TERMINATE_TIMEOUT_S, force=False)
    doomed = [v for v in vols if v.delete_on_termination]
    discard_disks(services, inst, doomed)
    with services.catalog.write() as tx:
        for v in vols:
            if v.delete_on_termination:
                cat_volumes.delete_volume(tx, v.volume_id)
            else:
                change_volume(
                    tx,
                    v.volume_id,
                    VolumeState.AVAILABLE,
                    {
                        "instance_id": None,
                        "device": None,
                        "attach_time": None,
                        "delete_on_termination": None,
                    },
                )
        change_instance(
            tx,
            inst.instance_id,
            [S.SHUTTING_DOWN],
            S.TERMINATED,
            {
                "terminated_at": utc_now(),
                "state_reason_code": inst.state_reason_code or USER_SHUTDOWN[0],
                "state_reason_message": inst.state_reason_message or USER_SHUTDOWN[1],
            },
        )
    log.info(
        "%s: terminated (volumes deleted: %s)", inst.instance_id, [v.volume_id for v in doomed]
    )


def reboot(services: Services, instance_id: str) -> None:
    """RebootInstances' step: a clean guest power-off and a fresh boot; the instance stays
    ``running`` (as on EC2, a reboot is not a state change)."""
    inst, vols = _read(services, instance_id)
    if inst is None or inst.state != S.RUNNING:
        return
    stop_vm(services, inst, REBOOT_TIMEOUT_S, force=False, keep_address=True)
    try:
        start_vm(services, inst, prepare_disks(services, inst, vols))
        log.info("%s: rebooted", instance_id)
    except KilnError as e:
        log.warning("%s: reboot failed: %s", instance_id, e.message)
        _set(services, instance_id, [S.RUNNING], internal_error(e.message), state=S.STOPPED.value)


def _vm_gone(services: Services, inst: InstanceRecord, reason: tuple[str, str]) -> None:
    """A ``running`` instance whose VM is not running (call under its lock)."""
    vm_network.unplug(services, inst)
    ephemeral = inst.root_device_type == "instance-store"
    if ephemeral or inst.shutdown_behavior == "terminate":
        if _set(services, inst.instance_id, [S.RUNNING], reason, state=S.SHUTTING_DOWN.value):
            fresh, vols = _read(services, inst.instance_id)
            if fresh is not None:
                _terminate(services, fresh, vols)
    elif _set(
        services,
        inst.instance_id,
        [S.RUNNING],
        reason,
        state=S.STOPPED.value,
        state_transition_reason=reason[1],
    ):
        log.info("%s: VM is gone; stopped (%s)", inst.instance_id, reason[0])


def held_down(services: Services) -> set[str]:
    """Instances whose VM an unfinished job shut down on purpose and will boot again: the job
    named them in its result (``RESTART_INSTANCE``). They stay ``running`` without a VM until
    the job, resumed after a restart, boots them (docs/instances.md#createimage)."""
    with services.catalog.read() as tx:
        jobs = cat_jobs.unfinished_jobs(tx)
    return {
        str(j.result[RESTART_INSTANCE])
        for j in jobs
        if j.result is not None and j.result.get(RESTART_INSTANCE)
    }


def watch_running(services: Services) -> None:
    """The watcher's tick: a running instance whose guest powered off becomes stopped (or
    terminated, for instance-store roots and shutdown behaviour ``terminate``), unless a job
    holds it down (``held_down``)."""
    runtime = runtime_of(services)
    with services.catalog.read() as tx:
        running = cat.instances_in_states(tx, [S.RUNNING])
    held: set[str] | None = None
    for inst in running:
        with runtime.try_locked(inst.instance_id) as got:
            if not got:
                continue
            fresh, _ = _read(services, inst.instance_id)
            if fresh is not None and fresh.state == S.RUNNING and not vm_running(services, fresh):
                held = held_down(services) if held is None else held
                if fresh.instance_id not in held:
                    _vm_gone(services, fresh, GUEST_SHUTDOWN)


def reconcile(services: Services) -> int:
    """At server start: running VMs are attached again, instances whose VM died while Kiln
    was down are marked stopped (or terminated) unless a job holds them down (``held_down``),
    unfinished transitions are resumed.
    Returns how many instances have a VM running."""
    runtime = runtime_of(services)
    with services.catalog.read() as tx:
        live = cat.instances_in_states(tx, [s.value for s in VM_STATES])
        gone = [
            i
            for i in cat.instances_in_states(tx, [S.TERMINATED])
            if i.terminated_at and i.terminated_at < hidden_before()
        ]
    held = held_down(services)
    alive = 0
    for inst in live:
        if inst.state == S.RUNNING:
            with runtime.locked(inst.instance_id):
                if vm_running(services, inst):
                    alive += 1
                    log.info(
                        "%s: re-attached to its VM in %s",
                        inst.instance_id,
                        instance_dir(services, inst.region, inst.instance_id),
                    )
                elif inst.instance_id in held:
                    log.info(
                        "%s: VM down for an unfinished job, which boots it again", inst.instance_id
                    )
                else:
                    _vm_gone(
                        services, inst, internal_error("the VM was not running when Kiln started")
                    )
        else:
            submit_converge(services, inst.instance_id, f"resume {inst.state}")
    for inst in gone:
        forget_run_dir(services, inst.region, inst.instance_id)
    return alive
