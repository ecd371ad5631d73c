"""The catalog, read for the host's network layer: VPCs, NICs and metadata as the plain values
of kiln/compute/network/types.py (no catalog type crosses into kiln/compute)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import instances as cat
from kiln.catalog import networks as cat_net
from kiln.catalog.instances import InstanceRecord
from kiln.compute.network.types import (
    InstanceMetadata,
    MetadataOptions,
    Nic,
    SubnetNet,
    VpcNet,
)
from kiln.errors import KilnError
from kiln.services.networks.resolve import flow_rules

#: Instances whose guest may be up: these have NICs (and metadata answers).
WITH_VM = ("pending", "running", "stopping", "shutting-down")


def vpc_net(tx: Tx, vpc_id: str) -> VpcNet:
    vpc = cat_net.get_vpc(tx, vpc_id)
    if vpc is None:
        raise KilnError(errors.InvalidVpcIDNotFound, f"The vpc ID '{vpc_id}' does not exist")
    subnets = tuple(
        SubnetNet(s.subnet_id, s.cidr_block)
        for s in sorted(cat_net.subnets_of_vpc(tx, vpc_id), key=lambda s: s.subnet_id)
    )
    return VpcNet(vpc.vpc_id, vpc.cidr_block, subnets)


def _group_ids(inst: InstanceRecord) -> list[str]:
    return [g["GroupId"] for g in inst.security_groups if g.get("GroupId")]


def nic_of(tx: Tx, inst: InstanceRecord) -> Nic:
    """The instance's NIC with its groups' rules resolved (a source group: its members'
    private addresses)."""
    if inst.vpc_id is None or inst.subnet_id is None:
        raise KilnError(errors.InternalError, f"{inst.instance_id} is in no VPC")
    groups = _group_ids(inst)
    return Nic(
        instance_id=inst.instance_id,
        vpc_id=inst.vpc_id,
        subnet_id=inst.subnet_id,
        mac=inst.mac_address,
        private_ip=inst.private_ip,
        public_ip=inst.public_ip,
        ingress=flow_rules(tx, groups, is_egress=False),
        egress=flow_rules(tx, groups, is_egress=True),
    )


def _with_vm(tx: Tx, vpc_id: str | None = None) -> list[InstanceRecord]:
    found = cat.instances_in_states(tx, list(WITH_VM), vpc_id)  # the VPC's rows only (indexed)
    return [i for i in found if i.vpc_id is not None]


def running_nics_in_vpc(tx: Tx, vpc_id: str) -> list[Nic]:
    return [nic_of(tx, i) for i in _with_vm(tx, vpc_id)]


def vpcs_of_groups(tx: Tx, group_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for gid in group_ids:
        g = cat_net.get_group(tx, gid)
        if g is not None:
            out.add(g.vpc_id)
    return out


def running_networks(tx: Tx) -> tuple[list[VpcNet], list[Nic]]:
    """The VPCs with an instance whose VM may be up, and those instances' NICs."""
    insts = [i for i in _with_vm(tx) if i.state == "running"]
    vpc_ids = sorted({i.vpc_id for i in insts if i.vpc_id is not None})
    vpcs = []
    for vpc_id in vpc_ids:
        try:
            vpcs.append(vpc_net(tx, vpc_id))
        except KilnError:
            continue
    have = {v.vpc_id for v in vpcs}
    return vpcs, [nic_of(tx, i) for i in insts if i.vpc_id in have]


def metadata_of(tx: Tx, vpc_id: str, private_ip: str) -> InstanceMetadata | None:
    """What the metadata service shows the guest at ``private_ip`` of ``vpc_id``."""
    inst = next((i for i in _with_vm(tx, vpc_id) if i.private_ip == private_ip), None)
    if inst is None or inst.subnet_id is None:
        return None
    tagged = cat.get_instances(tx, [inst.instance_id], inst.owner_id)
    inst = tagged[0] if tagged else inst
    vpc = cat_net.get_vpc(tx, vpc_id)
    subnet = cat_net.get_subnet(tx, inst.subnet_id or "")
    if vpc is None or subnet is None:
        return None
    keys = ((inst.key_name or "key", inst.public_key),) if inst.public_key else ()
    return InstanceMetadata(
        instance_id=inst.instance_id,
        image_id=inst.image_id,
        instance_type=inst.instance_type,
        availability_zone=inst.availability_zone,
        region=inst.region,
        account_id=inst.owner_id,
        mac=inst.mac_address,
        private_ip=inst.private_ip,
        public_ip=inst.public_ip,
        subnet_id=subnet.subnet_id,
        vpc_id=vpc_id,
        subnet_cidr=subnet.cidr_block,
        vpc_cidr=vpc.cidr_block,
        security_groups=tuple(g["GroupName"] for g in inst.security_groups),
        security_group_ids=tuple(_group_ids(inst)),
        launch_index=inst.ami_launch_index,
        reservation_id=inst.reservation_id,
        public_keys=keys,
        user_data=base64.b64decode(inst.user_data) if inst.user_data else None,
        tags=tuple((t.key, t.value) for t in inst.tags),
        launch_time=inst.launch_time,
        options=MetadataOptions(
            http_tokens=inst.metadata_http_tokens,
            http_put_response_hop_limit=inst.metadata_hop_limit,
            http_endpoint=inst.metadata_http_endpoint,
            instance_metadata_tags=inst.metadata_tags,
        ),
    )
