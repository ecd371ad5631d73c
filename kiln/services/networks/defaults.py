"""The default VPC of each account and region (172.31.0.0/16, one default subnet per zone, its
default security group), made lazily on first use, once, race-safe; and the default group
every VPC has."""

from __future__ import annotations

import ipaddress

from kiln.catalog import Tx
from kiln.catalog import networks as cat
from kiln.catalog.networks import RuleRecord, SecurityGroupRecord, SubnetRecord, VpcRecord
from kiln.catalog.records import utc_now
from kiln.services.context import Caller, Services
from kiln.services.regions.availability_zones import zones
from kiln.types import new_id

DEFAULT_VPC_CIDR = "172.31.0.0/16"
DEFAULT_SUBNET_PREFIX = 20  # 172.31.0.0/20, 172.31.16.0/20, ... one per zone, as on EC2
DEFAULT_GROUP = "default"
DEFAULT_GROUP_DESCRIPTION = "default VPC security group"


def add_default_group(tx: Tx, vpc: VpcRecord) -> SecurityGroupRecord:
    """The VPC's ``default`` group: all traffic from its own members, all traffic out."""
    group = SecurityGroupRecord(
        new_id("sg"), vpc.vpc_id, vpc.region, vpc.owner_id, DEFAULT_GROUP,
        DEFAULT_GROUP_DESCRIPTION,
    )  # fmt: skip
    cat.insert_group(tx, group)
    cat.insert_rules(
        tx,
        [
            RuleRecord(new_id("sgr"), group.group_id, False, "-1", -1, -1,
                       referenced_group_id=group.group_id),
            RuleRecord(new_id("sgr"), group.group_id, True, "-1", -1, -1, cidr_ipv4="0.0.0.0/0"),
        ],
    )  # fmt: skip
    return group


def ensure_default_vpc(tx: Tx, owner_id: str, region: str) -> str | None:
    """The account's default VPC in ``region``, made now if it never was (None: the account
    deleted it; EC2 does not bring it back by itself)."""
    made, vpc_id = cat.default_vpc_entry(tx, owner_id, region)
    if made:
        return vpc_id
    vpc_id = new_id("vpc")
    if not cat.claim_default_vpc(tx, owner_id, region, vpc_id):  # another transaction made it
        return cat.default_vpc_entry(tx, owner_id, region)[1]
    now = utc_now()
    vpc = VpcRecord(vpc_id, region, owner_id, DEFAULT_VPC_CIDR, True, "available", now,
                    enable_dns_hostnames=True)  # fmt: skip
    cat.insert_vpc(tx, vpc)
    blocks = ipaddress.IPv4Network(DEFAULT_VPC_CIDR).subnets(new_prefix=DEFAULT_SUBNET_PREFIX)
    for zone, block in zip(zones(region), blocks, strict=False):
        cat.insert_subnet(
            tx,
            SubnetRecord(new_id("subnet"), vpc_id, region, owner_id, zone, str(block), True, True,
                         "available", now),
        )  # fmt: skip
    add_default_group(tx, vpc)
    return vpc_id


def ensure_for(services: Services, caller: Caller) -> None:
    """Before a read: the caller's default VPC exists (one cheap read when it does)."""
    with services.catalog.read() as tx:
        made, _ = cat.default_vpc_entry(tx, caller.account_id, caller.region)
    if not made:
        with services.catalog.write() as tx:
            ensure_default_vpc(tx, caller.account_id, caller.region)
