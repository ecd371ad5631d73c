"""CreateVpc, DeleteVpc, DescribeVpcs, CreateSubnet, DeleteSubnet, DescribeSubnets."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import networks as cat
from kiln.catalog.networks import SubnetRecord, VpcRecord
from kiln.catalog.records import Filter, utc_now
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.networks.defaults import add_default_group, ensure_for
from kiln.services.regions.availability_zones import zones
from kiln.services.row_filters import check_names, matches
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)

#: EC2's bounds on a VPC's or subnet's IPv4 block.
MIN_PREFIX, MAX_PREFIX = 16, 28
RESERVED = 5  # network, router, DNS, future, broadcast


def parse_block(cidr: str | None, what: str, bad: errors.ErrorCode) -> ipaddress.IPv4Network:
    if not cidr:
        raise KilnError(errors.MissingParameter, f"The request must contain the parameter {what}")
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        raise KilnError(
            errors.InvalidParameterValue, f"Value ({cidr}) for parameter cidrBlock is invalid. "
            "This is not a valid CIDR block."
        ) from None  # fmt: skip
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise KilnError(bad, f"The CIDR '{cidr}' is invalid.")
    return net


# --- VPCs -------------------------------------------------------------------------------------
def _own_vpc(tx: Tx, caller: Caller, vpc_id: str) -> VpcRecord:
    vpc = cat.get_vpc(tx, vpc_id, caller.account_id)
    if vpc is None or vpc.owner_id != caller.account_id or vpc.region != caller.region:
        raise KilnError(errors.InvalidVpcIDNotFound, f"The vpc ID '{vpc_id}' does not exist")
    return vpc


def create_vpc(
    services: Services,
    caller: Caller,
    cidr_block: str | None,
    tag_specs: Sequence[TagSpec],
    dry_run_flag: bool,
) -> VpcRecord:
    parse_block(cidr_block, "CidrBlock", errors.InvalidVpcRange)
    check_tag_specs(tag_specs, ("vpc",))
    dry_run(dry_run_flag)
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        vpc = VpcRecord(new_id("vpc"), caller.region, caller.account_id, str(cidr_block), False,
                        "available", utc_now())  # fmt: skip
        cat.insert_vpc(tx, vpc)
        add_default_group(tx, vpc)
        apply_tag_specs(tx, caller, tag_specs, {"vpc": [vpc.vpc_id]})
        made = _own_vpc(tx, caller, vpc.vpc_id)
    log.info("CreateVpc %s %s for %s", vpc.vpc_id, cidr_block, caller.account_id)
    return made


def delete_vpc(services: Services, caller: Caller, vpc_id: str | None, dry_run_flag: bool) -> None:
    if not vpc_id:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter vpcId")
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        _own_vpc(tx, caller, vpc_id)
        others = [g for g in cat.list_groups(tx, vpc_id=vpc_id) if g.group_name != "default"]
        if cat.list_subnets(tx, vpc_id=vpc_id) or others or cat.instances_in_vpc(tx, vpc_id):
            raise KilnError(
                errors.DependencyViolation,
                f"The vpc '{vpc_id}' has dependencies and cannot be deleted.",
            )
        dry_run(dry_run_flag)
        for g in cat.list_groups(tx, vpc_id=vpc_id):
            cat.delete_group(tx, g.group_id)
        cat.delete_vpc(tx, vpc_id)
    if services.networks is not None:
        services.networks.delete_vpc(vpc_id)
    log.info("DeleteVpc %s for %s", vpc_id, caller.account_id)


def _flag(value: bool) -> str:
    return "true" if value else "false"


VPC_FILTERS: dict[str, Callable[[VpcRecord], Iterable[str | None]]] = {
    "vpc-id": lambda v: [v.vpc_id],
    "cidr": lambda v: [v.cidr_block],
    "cidr-block-association.cidr-block": lambda v: [v.cidr_block],
    "is-default": lambda v: [_flag(v.is_default)],
    "isDefault": lambda v: [_flag(v.is_default)],  # EC2's older spelling (Ansible sends it)
    "state": lambda v: [v.state],
    "owner-id": lambda v: [v.owner_id],
    "dhcp-options-id": lambda v: ["default"],
}


def describe_vpcs(
    services: Services,
    caller: Caller,
    vpc_ids: Sequence[str],
    filters: Sequence[Filter],
    dry_run_flag: bool,
) -> list[VpcRecord]:
    check_names(filters, VPC_FILTERS)
    dry_run(dry_run_flag)
    ensure_for(services, caller)
    with services.catalog.read() as tx:
        if vpc_ids:
            found = [_own_vpc(tx, caller, v) for v in dict.fromkeys(vpc_ids)]
        else:
            found = cat.list_vpcs(tx, caller.account_id, caller.region, viewer=caller.account_id)
    return [v for v in found if matches(v, v.tags, filters, VPC_FILTERS)]


# --- subnets ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SubnetView:
    subnet: SubnetRecord
    available_ips: int


def _own_subnet(tx: Tx, caller: Caller, subnet_id: str) -> SubnetRecord:
    s = cat.get_subnet(tx, subnet_id, caller.account_id)
    if s is None or s.owner_id != caller.account_id or s.region != caller.region:
        raise KilnError(
            errors.InvalidSubnetIDNotFound, f"The subnet ID '{subnet_id}' does not exist"
        )
    return s


def _view(tx: Tx, s: SubnetRecord) -> SubnetView:
    size = ipaddress.IPv4Network(s.cidr_block).num_addresses
    return SubnetView(s, size - RESERVED - len(cat.private_ips_in_subnet(tx, s.subnet_id)))


def create_subnet(
    services: Services,
    caller: Caller,
    vpc_id: str | None,
    cidr_block: str | None,
    availability_zone: str | None,
    tag_specs: Sequence[TagSpec],
    dry_run_flag: bool,
) -> SubnetView:
    if not vpc_id:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter VpcId")
    net = parse_block(cidr_block, "CidrBlock", errors.InvalidSubnetRange)
    zone = availability_zone or zones(caller.region)[0]
    if zone not in zones(caller.region):
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently "
            f"only be created in the following availability zones: {', '.join(zones(caller.region))}.",
        )
    check_tag_specs(tag_specs, ("subnet",))
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        vpc = _own_vpc(tx, caller, vpc_id)
        if not net.subnet_of(ipaddress.IPv4Network(vpc.cidr_block)):
            raise KilnError(errors.InvalidSubnetRange, f"The CIDR '{cidr_block}' is invalid.")
        for other in cat.list_subnets(tx, vpc_id=vpc_id):
            if net.overlaps(ipaddress.IPv4Network(other.cidr_block)):
                raise KilnError(
                    errors.InvalidSubnetConflict,
                    f"The CIDR '{cidr_block}' conflicts with another subnet",
                )
        dry_run(dry_run_flag)
        subnet = SubnetRecord(new_id("subnet"), vpc_id, caller.region, caller.account_id, zone,
                              str(net), False, False, "available", utc_now())  # fmt: skip
        cat.insert_subnet(tx, subnet)
        apply_tag_specs(tx, caller, tag_specs, {"subnet": [subnet.subnet_id]})
        return _view(tx, _own_subnet(tx, caller, subnet.subnet_id))


def delete_subnet(
    services: Services, caller: Caller, subnet_id: str | None, dry_run_flag: bool
) -> None:
    if not subnet_id:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter subnetId")
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        _own_subnet(tx, caller, subnet_id)
        if cat.instances_in_subnet(tx, subnet_id):
            raise KilnError(
                errors.DependencyViolation,
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted.",
            )
        dry_run(dry_run_flag)
        cat.delete_subnet(tx, subnet_id)


SUBNET_FILTERS: dict[str, Callable[[SubnetView], Iterable[str | None]]] = {
    "subnet-id": lambda v: [v.subnet.subnet_id],
    "vpc-id": lambda v: [v.subnet.vpc_id],
    "availability-zone": lambda v: [v.subnet.availability_zone],
    "availabilityZone": lambda v: [v.subnet.availability_zone],
    "cidr-block": lambda v: [v.subnet.cidr_block],
    "cidr": lambda v: [v.subnet.cidr_block],
    "cidrBlock": lambda v: [v.subnet.cidr_block],
    "default-for-az": lambda v: [_flag(v.subnet.default_for_az)],
    "defaultForAz": lambda v: [_flag(v.subnet.default_for_az)],
    "map-public-ip-on-launch": lambda v: [_flag(v.subnet.map_public_ip_on_launch)],
    "state": lambda v: [v.subnet.state],
    "owner-id": lambda v: [v.subnet.owner_id],
    "available-ip-address-count": lambda v: [str(v.available_ips)],
}


def describe_subnets(
    services: Services,
    caller: Caller,
    subnet_ids: Sequence[str],
    filters: Sequence[Filter],
    dry_run_flag: bool,
) -> list[SubnetView]:
    check_names(filters, SUBNET_FILTERS)
    dry_run(dry_run_flag)
    ensure_for(services, caller)
    with services.catalog.read() as tx:
        if subnet_ids:
            found = [_own_subnet(tx, caller, s) for s in dict.fromkeys(subnet_ids)]
        else:
            found = cat.list_subnets(tx, caller.account_id, caller.region, viewer=caller.account_id)
        views = [_view(tx, s) for s in found]
    return [v for v in views if matches(v, v.subnet.tags, filters, SUBNET_FILTERS)]
