"""What the instance rules tell the host's network layer, and what it answers: plain values.

The rules (kiln/services/networks, kiln/services/instances) own VPCs, subnets, security groups
and addresses in the catalog; this layer (kiln/compute/network) makes them real on the host: one
isolated network per VPC, a guest's NIC on it, the forwards from its public address on the host,
the filtering its security groups ask for, and the instance metadata service at
169.254.169.254. Nothing here reads the catalog: the rules resolve everything (source groups to
addresses, defaults) into these values first. See docs/networks.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: The metadata address every guest reaches inside its VPC, as on EC2.
METADATA_ADDRESS = "169.254.169.254"


@dataclass(frozen=True, slots=True)
class SubnetNet:
    """One subnet of a VPC: its id and IPv4 CIDR. Its router (gateway, DHCP server) is the
    CIDR's base address + 1, as on EC2."""

    subnet_id: str
    cidr: str


@dataclass(frozen=True, slots=True)
class VpcNet:
    """One VPC: its id, IPv4 CIDR and subnets."""

    vpc_id: str
    cidr: str
    subnets: tuple[SubnetNet, ...]


@dataclass(frozen=True, slots=True)
class FlowRule:
    """One flow a security group allows, resolved by the rules: IP ``protocol`` (``"tcp"``,
    ``"udp"``, ``"icmp"`` or ``"-1"`` for all), ports ``from_port..to_port`` (ICMP: type and
    code; -1 = all), and the peer addresses as CIDRs (a source-group reference becomes the
    ``/32`` of each member's private address)."""

    protocol: str
    from_port: int
    to_port: int
    cidrs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Nic:
    """A running instance's network interface as the host must set it up.

    ``public_ip`` is the instance's own address in 127.0.0.0/8 on the host (None: no public
    address); the guest's ports are reachable there at their own numbers while an ``ingress``
    rule allows them (connections from the host come from a 127.x address). ``ingress`` and
    ``egress`` are also enforced between instances of the VPC. DHCP gives the guest
    ``private_ip`` for ``mac``."""

    instance_id: str
    vpc_id: str
    subnet_id: str
    mac: str
    private_ip: str
    public_ip: str | None
    ingress: tuple[FlowRule, ...] = ()
    egress: tuple[FlowRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """How the hypervisor joins a NIC to its network: ``argv_prefix`` runs the hypervisor where
    the NIC's device lives (e.g. ``["ip", "netns", "exec", NS]``), ``qemu_args`` are the
    ``-netdev``/``-device`` arguments."""

    argv_prefix: tuple[str, ...]
    qemu_args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MetadataOptions:
    """An instance's MetadataOptions, as RunInstances / ModifyInstanceMetadataOptions set them."""

    http_tokens: str = "optional"  # "optional" (v1 and v2) | "required" (v2 only)
    http_put_response_hop_limit: int = 1
    http_endpoint: str = "enabled"
    instance_metadata_tags: str = "disabled"


@dataclass(frozen=True, slots=True)
class InstanceMetadata:
    """What the metadata service shows one instance (found by its VPC and private address)."""

    instance_id: str
    image_id: str
    instance_type: str
    availability_zone: str
    region: str
    account_id: str
    mac: str
    private_ip: str
    public_ip: str | None
    subnet_id: str
    vpc_id: str
    subnet_cidr: str
    vpc_cidr: str
    security_groups: tuple[str, ...]  # group names
    security_group_ids: tuple[str, ...]
    launch_index: int = 0
    reservation_id: str = ""
    hostname: str = ""
    public_keys: tuple[tuple[str, str], ...] = ()  # (key name, OpenSSH public key)
    user_data: bytes | None = None
    tags: tuple[tuple[str, str], ...] = ()
    launch_time: str = ""  # ISO 8601 UTC ("2024-05-01T12:00:00Z"): the document's pendingTime
    options: MetadataOptions = field(default_factory=MetadataOptions)


#: The rules' answer to "who is at this private address of this VPC?" (None: nobody).
MetadataLookup = Callable[[str, str], InstanceMetadata | None]


class NetworkHost(Protocol):
    """The host side of VPC networking. Every method is idempotent and safe from several
    threads. Raises ``KilnError`` (``InsufficientInstanceCapacity``) when the host cannot do
    what is asked (missing tools, no permission); nothing is half set up then."""

    def ensure_vpc(self, vpc: VpcNet) -> None:
        """Create (or update to) the VPC's isolated network, its routers, DHCP and metadata
        service."""
        ...

    def delete_vpc(self, vpc_id: str) -> None:
        """Remove the VPC's network (no NIC is plugged into it any more)."""
        ...

    def plug(self, nic: Nic, run_dir: str) -> Attachment:
        """Prepare ``nic`` before its VM starts (``run_dir`` is the VM's run directory); the
        forwards and filters of ``nic`` apply from then on."""
        ...

    def update(self, nic: Nic) -> None:
        """Apply a changed ``nic`` (rules added or revoked) to a plugged NIC at once."""
        ...

    def update_plugged(self, nics: Sequence[Nic]) -> None:
        """``update`` for those of ``nics`` that are plugged (the others are skipped: their
        ``plug`` reads the rules then), each VPC's filter applied once."""
        ...

    def unplug(self, instance_id: str) -> None:
        """Undo ``plug`` after the VM stopped (forwards closed, DHCP lease and filters gone)."""
        ...

    def reconcile(self, vpcs: Sequence[VpcNet], nics: Sequence[Nic]) -> None:
        """At server start: make the host match exactly these VPCs and running NICs (VMs keep
        running across restarts; in-process forwards and the metadata service are rebuilt)."""
        ...

    def close(self) -> None:
        """Stop the in-process parts (forwards, metadata service) at server shutdown; VPC
        networks and VMs stay."""
        ...
