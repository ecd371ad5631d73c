"""Security group rules resolved into the host layer's flows (kiln/compute/network/types.py):
a rule naming a source group becomes the /32 of each live member's private address."""

from __future__ import annotations

from collections.abc import Sequence

from kiln.catalog import Tx
from kiln.catalog import networks as cat
from kiln.compute.network.types import FlowRule

#: Protocols the host filters by name; other protocol numbers are not forwarded.
HOST_PROTOCOLS = ("tcp", "udp", "icmp", "-1")


def flow_rules(tx: Tx, group_ids: Sequence[str], is_egress: bool) -> tuple[FlowRule, ...]:
    out: list[FlowRule] = []
    groups = {g.group_id: g for g in cat.list_groups(tx, ids=list(group_ids))}
    for rule in cat.rules_of(tx, list(groups)):
        if rule.is_egress != is_egress or rule.ip_protocol not in HOST_PROTOCOLS:
            continue
        if rule.cidr_ipv4 is not None:
            cidrs: tuple[str, ...] = (rule.cidr_ipv4,)
        elif rule.referenced_group_id is not None:
            peer = cat.get_group(tx, rule.referenced_group_id)
            if peer is None:
                continue
            members = cat.group_members(tx, peer.vpc_id, peer.group_id)
            cidrs = tuple(sorted({f"{ip}/32" for _, ip in members}))
        else:
            continue  # IPv6 peers: the VPC networks carry IPv4 only
        if cidrs:
            out.append(FlowRule(rule.ip_protocol, rule.from_port, rule.to_port, cidrs))
    return tuple(out)
