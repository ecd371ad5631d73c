"""DescribeInstances, DescribeInstanceStatus and GetConsoleOutput."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import instances as cat
from kiln.catalog.instances import InstanceRecord
from kiln.catalog.records import Filter, utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.instances.access import InstanceView, owned_instances, views
from kiln.services.instances.lifecycle import hidden_before
from kiln.services.instances.states import InstanceState, code
from kiln.services.instances.vm_launch import console_output
from kiln.services.row_filters import check_names, matches
from kiln.services.validate import check_max_results, decode_token, dry_run, encode_token

READY_MARK = b"KILN-READY"
CONSOLE_BYTES = 64 * 1024  # EC2 returns the last 64 KiB of the serial console
LOOPBACK = "127.0.0.1"

Get = Callable[[InstanceView], list[str | None]]


def reachable(view: InstanceView) -> bool:
    """Running: the SSH port forward answers (Kiln reports 127.0.0.1 and the port)."""
    return view.instance.state == InstanceState.RUNNING and view.instance.ssh_port is not None


def public_dns(view: InstanceView) -> str:
    """Where SSH listens, ``127.0.0.1:PORT``, while running; empty otherwise (as EC2 clears
    the public name of a stopped instance). See docs/instances.md#networking."""
    return f"{LOOPBACK}:{view.instance.ssh_port}" if reachable(view) else ""


def _i(get: Callable[[InstanceRecord], object]) -> Get:
    return lambda v: [None if get(v.instance) is None else str(get(v.instance))]


INSTANCE_FILTERS: dict[str, Get] = {
    "instance-id": _i(lambda i: i.instance_id),
    "instance-state-name": _i(lambda i: i.state),
    "instance-state-code": _i(lambda i: code(i.state)),
    "image-id": _i(lambda i: i.image_id),
    "instance-type": _i(lambda i: i.instance_type),
    "key-name": _i(lambda i: i.key_name),
    "reservation-id": _i(lambda i: i.reservation_id),
    "owner-id": _i(lambda i: i.owner_id),
    "availability-zone": _i(lambda i: i.availability_zone),
    "architecture": _i(lambda i: i.architecture),
    "root-device-type": _i(lambda i: i.root_device_type),
    "root-device-name": _i(lambda i: i.root_device_name),
    "launch-time": _i(lambda i: i.launch_time),
    "client-token": _i(lambda i: i.client_token),
    "private-ip-address": _i(lambda i: i.private_ip),
    "ami-launch-index": _i(lambda i: i.ami_launch_index),
    "ip-address": lambda v: [LOOPBACK if reachable(v) else None],
    "dns-name": lambda v: [public_dns(v) or None],
    "instance.group-id": lambda v: [g.get("GroupId") for g in v.instance.security_groups],
    "instance.group-name": lambda v: [g.get("GroupName") for g in v.instance.security_groups],
    "block-device-mapping.volume-id": lambda v: [x.volume_id for x in v.volumes],
    "block-device-mapping.device-name": lambda v: [x.device for x in v.volumes],
    "block-device-mapping.delete-on-termination": lambda v: [
        str(bool(x.delete_on_termination)).lower() for x in v.volumes
    ],
}


@dataclass(frozen=True, slots=True)
class ReservationView:
    reservation_id: str
    owner_id: str
    groups: list[dict[str, str]]
    instances: list[InstanceView]


@dataclass(frozen=True, slots=True)
class DescribeInstancesResult:
    reservations: list[ReservationView]
    next_token: str | None


def _page(
    services: Services,
    caller: Caller,
    instance_ids: Sequence[str],
    filters: Sequence[Filter],
    max_results: int | None,
    next_token: str | None,
    query: list[object],
    getters: dict[str, Get],
    states: Sequence[str] = (),
) -> tuple[list[InstanceView], str | None]:
    after = decode_token(next_token, query)
    with services.catalog.read() as tx:
        if instance_ids:
            records = owned_instances(tx, caller, instance_ids, hidden_before())
        else:
            ids = cat.query_instance_ids(
                tx, caller.region, caller.account_id, states=states, hidden_before=hidden_before()
            )
            records = cat.get_instances(tx, ids, caller.account_id)
        found = views(tx, records)
    picked = [
        v
        for v in found
        if (after is None or v.instance.instance_id > str(after))
        and (not states or v.instance.state in states)
        and matches(v, v.instance.tags, filters, getters)
    ]
    token = None
    if max_results is not None and len(picked) > max_results:
        picked = picked[:max_results]
        token = encode_token(picked[-1].instance.instance_id, query)
    return picked, token


def _check_paging(instance_ids: Sequence[str], max_results: int | None) -> None:
    if instance_ids and max_results is not None:
        raise KilnError(
            errors.InvalidParameterCombination,
            "The parameter instancesSet cannot be used with the parameter maxResults",
        )
    check_max_results(max_results, 5, 1000)


def describe_instances(
    services: Services,
    caller: Caller,
    instance_ids: Sequence[str],
    filters: Sequence[Filter],
    max_results: int | None,
    next_token: str | None,
    dry_run_flag: bool,
) -> DescribeInstancesResult:
    check_names(filters, INSTANCE_FILTERS)
    _check_paging(instance_ids, max_results)
    dry_run(dry_run_flag)
    query: list[object] = [
        "DescribeInstances",
        caller.account_id,
        caller.region,
        [(f.name, f.values) for f in filters],
    ]
    picked, token = _page(
        services, caller, instance_ids, filters, max_results, next_token, query, INSTANCE_FILTERS
    )
    reservations: dict[str, ReservationView] = {}
    for v in picked:
        i = v.instance
        r = reservations.setdefault(
            i.reservation_id, ReservationView(i.reservation_id, i.owner_id, i.security_groups, [])
        )
        r.instances.append(v)
    return DescribeInstancesResult(list(reservations.values()), token)


# --- DescribeInstanceStatus --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InstanceStatus:
    view: InstanceView
    system_status: str  # ok | initializing | not-applicable
    instance_status: str  # ok (KILN-READY seen on the console) | initializing | not-applicable


def _status(services: Services, view: InstanceView) -> InstanceStatus:
    if view.instance.state != InstanceState.RUNNING:
        return InstanceStatus(view, "not-applicable", "not-applicable")
    ready = READY_MARK in console_output(services, view.instance)
    return InstanceStatus(view, "ok", "ok" if ready else "initializing")


STATUS_FILTERS: dict[str, Get] = {
    "availability-zone": INSTANCE_FILTERS["availability-zone"],
    "instance-state-name": INSTANCE_FILTERS["instance-state-name"],
    "instance-state-code": INSTANCE_FILTERS["instance-state-code"],
}
_STATUS_ONLY = (
    "instance-status.status",
    "system-status.status",
    "instance-status.reachability",
    "system-status.reachability",
)


def describe_instance_status(
    services: Services,
    caller: Caller,
    instance_ids: Sequence[str],
    filters: Sequence[Filter],
    include_all: bool,
    max_results: int | None,
    next_token: str | None,
    dry_run_flag: bool,
) -> tuple[list[InstanceStatus], str | None]:
    check_names(filters, [*STATUS_FILTERS, *_STATUS_ONLY])
    _check_paging(instance_ids, max_results)
    dry_run(dry_run_flag)
    query: list[object] = [
        "DescribeInstanceStatus",
        caller.account_id,
        caller.region,
        include_all,
        [(f.name, f.values) for f in filters],
    ]
    plain = [f for f in filters if f.name in STATUS_FILTERS]
    picked, token = _page(
        services,
        caller,
        instance_ids,
        plain,
        max_results,
        next_token,
        query,
        STATUS_FILTERS,
        () if include_all else (InstanceState.RUNNING.value,),
    )
    out = [_status(services, v) for v in picked]
    for f in filters:
        if f.name in _STATUS_ONLY:
            system = f.name.startswith("system")
            want = set(f.values)
            out = [
                s for s in out if _status_value(s, system, f.name.endswith("reachability")) in want
            ]
    return out, token


def _status_value(s: InstanceStatus, system: bool, reachability: bool) -> str:
    status = s.system_status if system else s.instance_status
    if not reachability:
        return status
    return {"ok": "passed", "initializing": "initializing"}.get(status, "not-applicable")


# --- GetConsoleOutput --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConsoleOutput:
    instance_id: str
    output: str | None  # base64, as EC2 sends it
    timestamp: str


def get_console_output(
    services: Services, caller: Caller, instance_id: str | None, dry_run_flag: bool
) -> ConsoleOutput:
    if not instance_id:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter InstanceId"
        )
    with services.catalog.read() as tx:
        inst = owned_instances(tx, caller, [instance_id], hidden_before())[0]
    dry_run(dry_run_flag)
    raw = console_output(services, inst)[-CONSOLE_BYTES:]
    return ConsoleOutput(instance_id, base64.b64encode(raw).decode() if raw else None, utc_now())
