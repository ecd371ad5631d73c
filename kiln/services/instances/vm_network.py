"""An instance's NIC on the host: what start and stop of its VM ask of the network layer.

The catalog says where an instance is (VPC, subnet, addresses, security groups); the read side
(kiln/services/networks/host_view.py) resolves that into the host layer's plain values and
this module hands them to ``Services.networks`` (kiln/compute/network). Without a network host
(``kiln serve --network user``) every function here is a no-op and the VM uses QEMU user
networking (vm_launch.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kiln import errors
from kiln.catalog import Catalog
from kiln.catalog import instances as cat
from kiln.catalog.instances import InstanceRecord
from kiln.compute.network.types import Attachment, InstanceMetadata, MetadataLookup, Nic, VpcNet
from kiln.errors import KilnError
from kiln.services.context import Services
from kiln.services.instances.placement import allocate_public_ip
from kiln.services.networks import host_view

log = logging.getLogger(__name__)


def plug(services: Services, inst: InstanceRecord, run_dir: str) -> Attachment | None:
    """Make the instance's VPC network and NIC ready before its VM starts; None without a
    network host or for an instance that is in no VPC (launched before VPCs existed)."""
    host = services.networks
    if host is None or inst.vpc_id is None:
        return None
    with services.catalog.write() as tx:
        fresh = cat.get_instance(tx, inst.instance_id, inst.owner_id)
        if fresh is None:
            raise KilnError(errors.InvalidInstanceIDNotFound, f"{inst.instance_id} is gone")
        if fresh.public_ip is None:  # a new address at each start, kept across reboots
            cat.update_instance(tx, fresh.instance_id, {"public_ip": allocate_public_ip(tx)})
            fresh = cat.get_instance(tx, inst.instance_id, inst.owner_id) or fresh
        vpc = host_view.vpc_net(tx, inst.vpc_id)
        nic = host_view.nic_of(tx, fresh)
    host.ensure_vpc(vpc)
    attachment = host.plug(nic, run_dir)
    refresh_vpc(services, inst.vpc_id, skip=inst.instance_id)
    return attachment


def unplug(services: Services, inst: InstanceRecord, keep_address: bool = False) -> None:
    """Undo ``plug`` once the VM is down (idempotent). The public address is released (EC2
    gives a stopped instance a new one at its next start) unless ``keep_address`` (reboot)."""
    host = services.networks
    if host is None:
        return
    host.unplug(inst.instance_id)
    if not keep_address:
        with services.catalog.write() as tx:
            if cat.get_instance(tx, inst.instance_id, inst.owner_id) is not None:
                cat.update_instance(tx, inst.instance_id, {"public_ip": None})
    if inst.vpc_id is not None:
        refresh_vpc(services, inst.vpc_id, skip=inst.instance_id)


def refresh_vpc(services: Services, vpc_id: str, skip: str | None = None) -> None:
    """Apply the current rules to every plugged NIC of ``vpc_id`` (a rule changed, or a member
    of a group that rules name as their source came or went). Best effort: a NIC that is not
    plugged (its VM is starting or stopping) is skipped; its own plug reads the rules then."""
    host = services.networks
    if host is None:
        return
    with services.catalog.read() as tx:
        nics = host_view.running_nics_in_vpc(tx, vpc_id)
    host.update_plugged([n for n in nics if n.instance_id != skip])


def refresh_groups(services: Services, group_ids: Iterable[str]) -> None:
    """After AuthorizeSecurityGroup*/RevokeSecurityGroup* committed: the VPCs of ``group_ids``
    get their rules again, at once."""
    if services.networks is None:
        return
    with services.catalog.read() as tx:
        vpcs = host_view.vpcs_of_groups(tx, list(group_ids))
    for vpc_id in vpcs:
        refresh_vpc(services, vpc_id)


def running_networks(services: Services) -> tuple[list[VpcNet], list[Nic]]:
    """What the host should have at server start: the VPCs with a running instance, and the
    NICs of those instances (NetworkHost.reconcile removes everything else)."""
    with services.catalog.read() as tx:
        return host_view.running_networks(tx)


def metadata_lookup(catalog: Catalog) -> MetadataLookup:
    """The metadata service's question, answered from the catalog at each request."""

    def lookup(vpc_id: str, private_ip: str) -> InstanceMetadata | None:
        with catalog.read() as tx:
            return host_view.metadata_of(tx, vpc_id, private_ip)

    return lookup


def ec2_identity(inst: InstanceRecord) -> tuple[str, ...]:
    """The SMBIOS values an EC2 guest sees (``-smbios``): cloud-init's ds-identify picks the
    Ec2 datasource when the system manufacturer is "Amazon EC2" or the product UUID and
    serial start with "ec2" (cloud-init 22.4 identify_aws); the chassis asset tag carries the
    instance id, as on Nitro."""
    digits = inst.instance_id.removeprefix("i-").ljust(17, "0")[:17]
    hexd = "".join(c if c in "0123456789abcdef" else "0" for c in digits)
    raw = ("ec2" + hexd + "0" * 32)[:32]
    uuid = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"
    return (
        f"type=1,manufacturer=Amazon EC2,product={inst.instance_type},serial={uuid},uuid={uuid}",
        f"type=3,manufacturer=Amazon EC2,asset={inst.instance_id}",
    )
