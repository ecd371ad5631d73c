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
    """Running with an address the host reaches: its own 127.x (VPC networking) or the
    127.0.0.1 port forward of QEMU user networking."""
    i = view.instance
    return i.state == InstanceState.RUNNING and (i.public_ip is not None or i.ssh_port is not None)


def public_ip(view: InstanceView) -> str | None:
    """``PublicIpAddress``: the instance's own 127.x address while it runs on a VPC network
    (its ports answer there at their own numbers); 127.0.0.1 with QEMU user networking; None
    when stopped (EC2 releases the public address). See docs/networks.md."""
    i = view.instance
    if i.state not in (InstanceState.RUNNING, InstanceState.PENDING):
        return None
    if i.public_ip is not None:
        return i.public_ip
    return LOOPBACK if reachable(view) else None


def public_dns(view: InstanceView) -> str:
    """``PublicDnsName``: empty on a VPC network (as in a VPC without DNS hostnames: tools use
    PublicIpAddress); ``127.0.0.1:PORT`` with QEMU user networking while running."""
    i = view.instance
    if i.public_ip is None and reachable(view):
        return f"{LOOPBACK}:{i.ssh_port}"
    return ""


def private_dns(i: InstanceRecord) -> str:
    """EC2's IP-based private name (``ip-172-31-0-5.ec2.internal`` in us-east-1)."""
    domain = "ec2.internal" if i.region == "us-east-1" else f"{i.region}.compute.internal"
    return f"ip-{i.private_ip.replace('.', '-')}.{domain}"


def eni_id(i: InstanceRecord) -> str:
    """The primary network interface's id: ``eni-`` + the instance id's digits."""
    return "eni-" + i.instance_id.removeprefix("i-")


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
    "ip-address": lambda v: [public_ip(v)],
    "vpc-id": _i(lambda i: i.vpc_id),
    "subnet-id": _i(lambda i: i.subnet_id),
    "network-interface.vpc-id": _i(lambda i: i.vpc_id),
    "network-interface.subnet-id": _i(lambda i: i.subnet_id),
    "network-interface.addresses.private-ip-address": _i(lambda i: i.private_ip),
    "network-interface.mac-address": _i(lambda i: i.mac_address),
    "network-interface.network-interface-id": _i(eni_id),
    "private-dns-name": _i(private_dns),
    "placement-group-name": lambda v: [None],
    "product-code": lambda v: [c.product_code_id for c in v.instance.product_codes],
    "product-code.type": lambda v: [c.product_code_type for c in v.instance.product_codes],
    "metadata-options.http-tokens": _i(lambda i: i.metadata_http_tokens),
    "metadata-options.http-endpoint": _i(lambda i: i.metadata_http_endpoint),
    "metadata-options.http-put-response-hop-limit": _i(lambda i: i.metadata_hop_limit),
    "metadata-options.instance-metadata-tags": _i(lambda i: i.metadata_tags),
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
