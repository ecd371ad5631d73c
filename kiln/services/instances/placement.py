"""Where a new instance sits on its network: subnet, security groups, private address, metadata
options (RunInstances), the public address of a running instance, and
ModifyInstanceMetadataOptions. See docs/networks.md.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import instances as cat
from kiln.catalog import networks as cat_net
from kiln.catalog.instances import InstanceRecord
from kiln.catalog.networks import SubnetRecord
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.instances.access import owned_instances
from kiln.services.instances.states import InstanceState
from kiln.services.networks.defaults import ensure_default_vpc
from kiln.services.validate import dry_run

#: Where public addresses come from: 127.16.0.0/12 of the host's loopback (never 127.0.0.1,
#: which the host's own services use). ~1M addresses: a random pick rarely collides.
PUBLIC_POOL = ipaddress.IPv4Network("127.16.0.0/12")
#: EC2 reserves the first four addresses of a subnet and its last one.
RESERVED_FIRST = 4


@dataclass(frozen=True, slots=True)
class InterfaceRequest:
    """``NetworkInterfaces[n]`` of RunInstances (Kiln: one, DeviceIndex 0)."""

    device_index: int | None = None
    subnet_id: str | None = None
    group_ids: tuple[str, ...] = ()
    private_ip: str | None = None
    associate_public_ip: bool | None = None
    network_interface_id: str | None = None


@dataclass(frozen=True, slots=True)
class MetadataOptionsRequest:
    http_tokens: str | None = None
    hop_limit: int | None = None
    http_endpoint: str | None = None
    instance_metadata_tags: str | None = None
    http_protocol_ipv6: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    vpc_id: str
    subnet_id: str
    availability_zone: str
    groups: list[dict[str, str]]  # [{"GroupId", "GroupName"}]
    private_ips: list[str]  # one per instance, in launch order


def _choice(value: str | None, name: str, allowed: Sequence[str]) -> str | None:
    if value is not None and value not in allowed:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{value}' for {name}. Valid values: {', '.join(allowed)}.",
        )
    return value


def metadata_columns(opts: MetadataOptionsRequest) -> dict[str, object]:
    """The instance columns ``opts`` sets (only those given); InvalidParameterValue for a
    value EC2 refuses."""
    out: dict[str, object] = {}
    if (v := _choice(opts.http_tokens, "HttpTokens", ("optional", "required"))) is not None:
        out["metadata_http_tokens"] = v
    if opts.hop_limit is not None:
        if not 1 <= opts.hop_limit <= 64:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid value '{opts.hop_limit}' for HttpPutResponseHopLimit. "
                "Valid values: 1 to 64.",
            )
        out["metadata_hop_limit"] = opts.hop_limit
    if (v := _choice(opts.http_endpoint, "HttpEndpoint", ("enabled", "disabled"))) is not None:
        out["metadata_http_endpoint"] = v
    tags = _choice(opts.instance_metadata_tags, "InstanceMetadataTags", ("enabled", "disabled"))
    if tags is not None:
        out["metadata_tags"] = tags
    if _choice(opts.http_protocol_ipv6, "HttpProtocolIpv6", ("enabled", "disabled")) == "enabled":
        raise KilnError(
            errors.UnsupportedOperation,
            "Kiln's metadata service has no IPv6 endpoint (HttpProtocolIpv6=enabled).",
        )
    return out


@dataclass(frozen=True, slots=True)
class LaunchMetadata:
    """A new instance's MetadataOptions (EC2's defaults where the request is silent)."""

    http_tokens: str = "optional"
    hop_limit: int = 1
    http_endpoint: str = "enabled"
    tags: str = "disabled"


def launch_metadata(opts: MetadataOptionsRequest) -> LaunchMetadata:
    metadata_columns(opts)  # the checks
    return LaunchMetadata(
        opts.http_tokens or "optional",
        opts.hop_limit or 1,
        opts.http_endpoint or "enabled",
        opts.instance_metadata_tags or "disabled",
    )


def _subnet(tx: Tx, caller: Caller, subnet_id: str | None, zone: str | None) -> SubnetRecord:
    if subnet_id:
        subnet = cat_net.get_subnet(tx, subnet_id)
        if subnet is None or subnet.owner_id != caller.account_id or subnet.region != caller.region:
            raise KilnError(
                errors.InvalidSubnetIDNotFound, f"The subnet ID '{subnet_id}' does not exist"
            )
        if zone and zone != subnet.availability_zone:
            raise KilnError(
                errors.InvalidParameterValue,
                f"The subnet {subnet_id} is in {subnet.availability_zone}, not in {zone}.",
            )
        return subnet
    vpc = cat_net.default_vpc(tx, caller.account_id, caller.region)
    if vpc is None:
        raise KilnError(
            errors.VPCIdNotSpecified,
            "No default VPC for this user. GroupName is only supported "
            "for EC2-Classic and default VPC.",
        )
    subnets = [s for s in cat_net.subnets_of_vpc(tx, vpc.vpc_id) if s.default_for_az]
    subnets.sort(key=lambda s: s.availability_zone)
    if zone:
        subnets = [s for s in subnets if s.availability_zone == zone]
    if not subnets:
        raise KilnError(
            errors.MissingInput,
            f"No subnets found for the default VPC '{vpc.vpc_id}'"
            + (f" in {zone}." if zone else ". Please specify a subnet."),
        )
    return subnets[0]


def _groups(
    tx: Tx, caller: Caller, subnet: SubnetRecord, ids: Sequence[str], names: Sequence[str]
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for gid in dict.fromkeys(ids):
        g = cat_net.get_group(tx, gid)
        if g is None or g.owner_id != caller.account_id or g.region != caller.region:
            raise KilnError(
                errors.InvalidGroupNotFound, f"The security group '{gid}' does not exist"
            )
        if g.vpc_id != subnet.vpc_id:
            raise KilnError(
                errors.InvalidParameter,
                f"Security group {gid} and subnet {subnet.subnet_id} belong to different networks.",
            )
        out.append({"GroupId": g.group_id, "GroupName": g.group_name})
    for name in dict.fromkeys(names):
        g = cat_net.group_by_name(tx, subnet.vpc_id, name)
        if g is None:
            raise KilnError(
                errors.InvalidGroupNotFound,
                f"The security group '{name}' does not exist in VPC '{subnet.vpc_id}'",
            )
        if all(o["GroupId"] != g.group_id for o in out):
            out.append({"GroupId": g.group_id, "GroupName": g.group_name})
    if not out:
        g = cat_net.group_by_name(tx, subnet.vpc_id, "default")
        if g is None:
            raise KilnError(
                errors.InvalidGroupNotFound,
                f"The VPC {subnet.vpc_id} has no default security group.",
            )
        out.append({"GroupId": g.group_id, "GroupName": g.group_name})
    return out


def _private_ips(tx: Tx, subnet: SubnetRecord, wanted: str | None, count: int) -> list[str]:
    net = ipaddress.IPv4Network(subnet.cidr_block)
    used = set(cat_net.private_ips_in_subnet(tx, subnet.subnet_id))
    first, last = int(net.network_address) + RESERVED_FIRST, int(net.broadcast_address) - 1
    if wanted is not None:
        if count != 1:
            raise KilnError(
                errors.InvalidParameterCombination,
                "A private IP address can be given for one instance only (MaxCount 1).",
            )
        try:
            addr = ipaddress.IPv4Address(wanted)
        except ValueError:
            raise KilnError(
                errors.InvalidParameterValue, f"Invalid private IP address '{wanted}'."
            ) from None
        if addr not in net:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Address {wanted} does not fall within the subnet's address range "
                f"{subnet.cidr_block}.",
            )
        if not first <= int(addr) <= last:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Address {wanted} is reserved in subnet {subnet.subnet_id} (EC2 reserves the "
                "first four addresses and the last one).",
            )
        if wanted in used:
            raise KilnError(errors.InvalidIPAddressInUse, f"Address {wanted} is in use.")
        return [wanted]
    out: list[str] = []
    for n in range(first, last + 1):
        ip = str(ipaddress.IPv4Address(n))
        if ip not in used:
            out.append(ip)
            if len(out) == count:
                return out
    raise KilnError(
        errors.InsufficientInstanceCapacity,
        f"There are not enough free addresses in subnet '{subnet.subnet_id}' to satisfy the "
        f"requested number of instances ({count}; {len(out)} free).",
    )


def place(
    tx: Tx,
    caller: Caller,
    *,
    count: int,
    zone: str | None,
    subnet_id: str | None,
    private_ip: str | None,
    group_ids: Sequence[str],
    group_names: Sequence[str],
    interfaces: Sequence[InterfaceRequest],
) -> Placement:
    """The network placement of ``count`` new instances (RunInstances' checks, in EC2's
    order); the default VPC is made first if the account has none yet."""
    if interfaces:
        if len(interfaces) > 1 or (interfaces[0].device_index or 0) != 0:
            raise KilnError(
                errors.UnsupportedOperation,
                "Kiln instances have one network interface (DeviceIndex 0).",
            )
        nif = interfaces[0]
        if nif.network_interface_id:
            raise KilnError(
                errors.UnsupportedOperation,
                "Kiln has no separate network interfaces to attach (NetworkInterfaceId).",
            )
        if subnet_id or group_ids or group_names or private_ip:
            raise KilnError(
                errors.InvalidParameterCombination,
                "Network interfaces and an instance-level subnet ID, security groups or "
                "private IP address may not be specified on the same request",
            )
        subnet_id, group_ids, private_ip = nif.subnet_id, nif.group_ids, nif.private_ip
    ensure_default_vpc(tx, caller.account_id, caller.region)
    subnet = _subnet(tx, caller, subnet_id, zone)
    groups = _groups(tx, caller, subnet, group_ids, group_names)
    ips = _private_ips(tx, subnet, private_ip, count)
    return Placement(subnet.vpc_id, subnet.subnet_id, subnet.availability_zone, groups, ips)


def allocate_public_ip(tx: Tx) -> str:
    """A free address of ``PUBLIC_POOL`` for an instance that starts (random: two servers on
    one host rarely meet; the catalog's addresses in use are excluded)."""
    used = set(cat_net.public_ips_in_use(tx))
    size = PUBLIC_POOL.num_addresses
    for _ in range(64):
        ip = str(PUBLIC_POOL.network_address + 1 + secrets.randbelow(size - 2))
        if ip not in used:
            return ip
    raise KilnError(errors.InsufficientInstanceCapacity, "No free public address on this host.")


def modify_instance_metadata_options(
    services: Services,
    caller: Caller,
    instance_id: str,
    opts: MetadataOptionsRequest,
    dry_run_flag: bool,
) -> InstanceRecord:
    """ModifyInstanceMetadataOptions: the metadata service answers by the new options at its
    next request (it reads them from the catalog each time)."""
    columns = metadata_columns(opts)
    with services.catalog.write() as tx:
        (inst,) = owned_instances(tx, caller, [instance_id])
        if inst.state in (InstanceState.TERMINATED, InstanceState.SHUTTING_DOWN):
            raise KilnError(
                errors.IncorrectInstanceState,
                f"The instance '{instance_id}' is not in a state from which its metadata "
                "options can be modified.",
            )
        dry_run(dry_run_flag)
        if columns:
            cat.update_instance(tx, instance_id, columns)
        fresh = cat.get_instances(tx, [instance_id], caller.account_id)
    return fresh[0]
