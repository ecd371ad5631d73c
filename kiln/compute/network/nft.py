"""The nftables ruleset of one VPC's namespace, as text for ``nft -f`` (a pure function).

The whole ruleset is replaced in one transaction on every change, so a guest never sees a
half-applied set of rules. Two tables:

``bridge kiln`` (stateless, per bridge port): a frame from a guest's tap must carry the NIC's
MAC and, for IPv4, the NIC's private address (or 0.0.0.0 to a DHCP server); ARP must name the
NIC's MAC and address. Everything else (IPv6, VLAN tags, other ether types, spoofed sources) is
dropped. This is what lets the rules below and the metadata service trust a source address.

``inet kiln`` (stateful): the bridge hands IPv4 between its ports to the IP hooks
(``net.bridge.bridge-nf-call-iptables=1``, set per namespace), so traffic between two guests
of one subnet (bridged) and of two subnets (routed by the namespace) both pass ``forward``:
established/related flows pass; a new flow from S to D passes only if one of S's egress rules
allows (D, protocol, port) and one of D's ingress rules allows (S, protocol, port), as between
two EC2 instances. Nothing else is forwarded (there is no uplink). ``input`` (the namespace
itself: routers, metadata address) takes only DHCP, ICMP echo to a router address and TCP 80 to
169.254.169.254; ``output`` (DHCP answers, the metadata service, the public forwards' own
connections to guests) is open.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from kiln.compute.network.types import METADATA_ADDRESS, FlowRule, Nic, VpcNet

TABLE = "kiln"
ALL_PORTS = (0, 65535)
_PROTO_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1"}


def router_address(cidr: str) -> str:
    """A subnet's router: its base address + 1."""
    return str(ipaddress.ip_network(cidr, strict=False).network_address + 1)


def _ipv4_nets(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network]:
    nets = []
    for c in cidrs:
        try:
            n = ipaddress.ip_network(c, strict=False)
        except ValueError:
            continue
        if isinstance(n, ipaddress.IPv4Network):
            nets.append(n)
    return list(ipaddress.collapse_addresses(nets))


def _proto(rule: FlowRule) -> str:
    p = rule.protocol.lower()
    return _PROTO_NUMBERS.get(p, p)


def _service(rule: FlowRule) -> str | None:
    """The protocol/port part of a rule as an nft match ("" = everything), None if the rule
    cannot match anything nft can express."""
    proto = _proto(rule)
    if proto == "-1":
        return ""
    if proto in ("tcp", "udp"):
        lo, hi = rule.from_port, rule.to_port
        if lo == -1 or (lo <= ALL_PORTS[0] and hi >= ALL_PORTS[1]):
            return f"meta l4proto {proto}"
        if lo < 0 or hi > 65535 or lo > hi:
            return None
        return f"{proto} dport {lo}" if lo == hi else f"{proto} dport {lo}-{hi}"
    if proto == "icmp":
        if rule.from_port == -1:
            return "meta l4proto icmp"
        out = f"icmp type {rule.from_port}"
        return out + (f" icmp code {rule.to_port}" if rule.to_port != -1 else "")
    if proto.isdigit() and 0 <= int(proto) <= 255:
        return f"meta l4proto {proto}"
    return None


def _rule_lines(rules: Sequence[FlowRule], peer: str, verdict: str) -> list[str]:
    """One nft rule per FlowRule: ``ip <peer> {cidrs} <service> <verdict>``."""
    lines = []
    for r in rules:
        service = _service(r)
        nets = _ipv4_nets(r.cidrs)
        if service is None or not nets:
            continue
        match = (
            ""
            if nets == [ipaddress.IPv4Network("0.0.0.0/0")]
            else (f"ip {peer} {{ {', '.join(str(n) for n in nets)} }} ")
        )
        lines.append(f"{match}{service} {verdict}".replace("  ", " ").strip())
    return lines


def _chain_id(instance_id: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in instance_id)


def ruleset(vpc: VpcNet, nics: Sequence[tuple[Nic, str]]) -> str:
    """The namespace's whole ruleset for ``vpc`` and its plugged ``(nic, tap name)`` pairs."""
    routers = sorted({router_address(s.cidr) for s in vpc.subnets})
    out = [
        f"add table bridge {TABLE}",
        f"delete table bridge {TABLE}",
        f"add table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table bridge {TABLE} {{",
        "  chain prerouting {",
        "    type filter hook prerouting priority -200; policy drop;",
    ]
    if nics:
        ports = ", ".join(f'"{tap}" : jump port_{_chain_id(n.instance_id)}' for n, tap in nics)
        out.append(f"    iifname vmap {{ {ports} }}")
    out.append("  }")
    for n, _tap in nics:
        mac = n.mac.lower()
        out += [
            f"  chain port_{_chain_id(n.instance_id)} {{",
            f"    ether saddr != {mac} drop",
            f"    arp saddr ether {mac} arp saddr ip {{ {n.private_ip}, 0.0.0.0 }} accept",
            f"    ip saddr {n.private_ip} accept",
            "    ip saddr 0.0.0.0 udp dport 67 accept",
            "    drop",
            "  }",
        ]
    out += [
        "}",
        f"table inet {TABLE} {{",
        "  chain input {",
        "    type filter hook input priority 0; policy drop;",
        "    iif lo accept",
        "    ct state established,related accept",
        "    ct state invalid drop",
        "    meta nfproto ipv6 drop",
        "    udp sport 68 udp dport 67 accept",
        f"    ip daddr {METADATA_ADDRESS} tcp dport 80 accept",
    ]
    if routers:
        out.append(f"    ip daddr {{ {', '.join(routers)} }} icmp type echo-request accept")
    out += [
        "  }",
        "  chain output {",
        "    type filter hook output priority 0; policy accept;",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority 0; policy drop;",
        "    ct state established,related accept",
        "    ct state invalid drop",
    ]
    if nics:
        srcs = ", ".join(
            f"{n.private_ip} : jump egress_{_chain_id(n.instance_id)}" for n, _ in nics
        )
        out.append(f"    ip saddr vmap {{ {srcs} }}")
    out.append("  }")
    if nics:
        dsts = ", ".join(
            f"{n.private_ip} : jump ingress_{_chain_id(n.instance_id)}" for n, _ in nics
        )
        out += ["  chain to_destination {", f"    ip daddr vmap {{ {dsts} }}", "  }"]
    for n, _tap in nics:
        cid = _chain_id(n.instance_id)
        out.append(f"  chain egress_{cid} {{")
        out += [f"    {line}" for line in _rule_lines(n.egress, "daddr", "jump to_destination")]
        out += ["  }", f"  chain ingress_{cid} {{"]
        out += [f"    {line}" for line in _rule_lines(n.ingress, "saddr", "accept")]
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"
