"""Security groups: Create/Delete/DescribeSecurityGroups, Authorize/RevokeSecurityGroupIngress
and Egress, DescribeSecurityGroupRules. A change to a group's rules reaches the running
instances of its VPC at once (kiln/services/instances/vm_network.py)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import networks as cat
from kiln.catalog.networks import RuleRecord, SecurityGroupRecord
from kiln.catalog.records import Filter
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.networks.defaults import DEFAULT_GROUP, ensure_for
from kiln.services.row_filters import check_names, matches
from kiln.services.tags.tags import TagSpec, apply_tag_specs, check_tag_specs
from kiln.services.validate import dry_run
from kiln.types import new_id

log = logging.getLogger(__name__)

PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}
PORTED = ("tcp", "udp")


@dataclass(frozen=True, slots=True)
class Peer:
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Permission:
    """One ``IpPermissions`` entry (or the flat CidrIp/IpProtocol/FromPort/ToPort form)."""

    ip_protocol: str | None
    from_port: int | None = None
    to_port: int | None = None
    peers: tuple[Peer, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class GroupView:
    group: SecurityGroupRecord
    rules: tuple[RuleRecord, ...]


# --- lookups ----------------------------------------------------------------------------------
def _not_found(what: str) -> KilnError:
    return KilnError(errors.InvalidGroupNotFound, f"The security group '{what}' does not exist")


def own_group(tx: Tx, caller: Caller, group_id: str) -> SecurityGroupRecord:
    g = cat.get_group(tx, group_id, caller.account_id)
    if g is None or g.owner_id != caller.account_id or g.region != caller.region:
        raise _not_found(group_id)
    return g


def _default_vpc_id(tx: Tx, caller: Caller) -> str:
    vpc = cat.default_vpc(tx, caller.account_id, caller.region)
    if vpc is None:
        raise KilnError(errors.VPCIdNotSpecified, "No default VPC for this user. Specify a VpcId.")
    return vpc.vpc_id


def find_group(
    tx: Tx, caller: Caller, group_id: str | None, group_name: str | None
) -> SecurityGroupRecord:
    """By id, or by name in the default VPC (EC2's rule for names)."""
    if group_id:
        return own_group(tx, caller, group_id)
    if not group_name:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter groupName or groupId"
        )
    vpc_id = _default_vpc_id(tx, caller)
    g = cat.group_by_name(tx, vpc_id, group_name, caller.account_id)
    if g is None:
        raise KilnError(
            errors.InvalidGroupNotFound,
            f"The security group '{group_name}' does not exist in default VPC '{vpc_id}'",
        )
    return g


# --- Create / Delete --------------------------------------------------------------------------
def create_security_group(
    services: Services,
    caller: Caller,
    group_name: str | None,
    description: str | None,
    vpc_id: str | None,
    tag_specs: Sequence[TagSpec],
    dry_run_flag: bool,
) -> SecurityGroupRecord:
    if not group_name:
        raise KilnError(errors.MissingParameter, "The request must contain the parameter GroupName")
    if description is None or description == "":
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter GroupDescription"
        )
    if len(group_name) > 255 or len(description) > 255:
        raise KilnError(
            errors.InvalidParameterValue, "Group names and descriptions are limited to 255 chars"
        )
    if group_name.lower().startswith("sg-"):
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{group_name}' for groupName. Group names may not be in the format "
            "sg-*.",
        )
    check_tag_specs(tag_specs, ("security-group",))
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        if vpc_id:
            vpc = cat.get_vpc(tx, vpc_id)
            if vpc is None or vpc.owner_id != caller.account_id or vpc.region != caller.region:
                raise KilnError(
                    errors.InvalidVpcIDNotFound, f"The vpc ID '{vpc_id}' does not exist"
                )
        else:
            vpc_id = _default_vpc_id(tx, caller)
        if cat.group_by_name(tx, vpc_id, group_name) is not None:
            raise KilnError(
                errors.InvalidGroupDuplicate,
                f"The security group '{group_name}' already exists for VPC '{vpc_id}'",
            )
        dry_run(dry_run_flag)
        group = SecurityGroupRecord(new_id("sg"), vpc_id, caller.region, caller.account_id,
                                    group_name, description)  # fmt: skip
        cat.insert_group(tx, group)
        # a new group lets everything out, as on EC2
        cat.insert_rules(
            tx, [RuleRecord(new_id("sgr"), group.group_id, True, "-1", -1, -1, "0.0.0.0/0")]
        )
        apply_tag_specs(tx, caller, tag_specs, {"security-group": [group.group_id]})
        made = own_group(tx, caller, group.group_id)
    log.info("CreateSecurityGroup %s (%s) in %s", made.group_id, group_name, vpc_id)
    return made


def _in_use(tx: Tx, group: SecurityGroupRecord) -> bool:
    return bool(cat.group_members(tx, group.vpc_id, group.group_id))


def delete_security_group(
    services: Services,
    caller: Caller,
    group_id: str | None,
    group_name: str | None,
    dry_run_flag: bool,
) -> SecurityGroupRecord:
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        g = find_group(tx, caller, group_id, group_name)
        if g.group_name == DEFAULT_GROUP:
            raise KilnError(
                errors.CannotDelete,
                f'the specified group: "{g.group_id}" name: "default" cannot be deleted by a user',
            )
        if _in_use(tx, g) or cat.rules_referencing(tx, g.group_id):
            raise KilnError(
                errors.DependencyViolation, f"resource {g.group_id} has a dependent object"
            )
        dry_run(dry_run_flag)
        cat.delete_group(tx, g.group_id)
    return g


# --- rules ------------------------------------------------------------------------------------
def _protocol(value: str | None) -> str:
    if value is None or value == "":
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter ipProtocol"
        )
    p = PROTOCOL_NAMES.get(value.lower(), value.lower())
    if p in ("tcp", "udp", "icmp", "icmpv6", "-1"):
        return p
    if p.isdigit() and 0 <= int(p) <= 255:
        return p
    raise KilnError(
        errors.InvalidParameterValue,
        f"Invalid value '{value}' for IP protocol. Unknown protocol.",
    )


def _ports(protocol: str, lo: int | None, hi: int | None) -> tuple[int, int]:
    if protocol in PORTED:
        if lo is None or hi is None:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid value for portRange. Must specify both from and to ports with "
                f"{protocol.upper()}.",
            )
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid {protocol.upper()} port range: from {lo} to {hi}.",
            )
        return lo, hi
    if protocol in ("icmp", "icmpv6"):
        lo = -1 if lo is None else lo
        hi = -1 if hi is None else hi
        if not (-1 <= lo <= 255 and -1 <= hi <= 255):
            raise KilnError(errors.InvalidParameterValue, f"Invalid ICMP type {lo} or code {hi}.")
        return lo, hi
    return -1, -1  # all protocols, or a protocol without ports


def _cidr(value: str, v6: bool) -> str:
    try:
        net = ipaddress.IPv6Network(value) if v6 else ipaddress.IPv4Network(value)
    except ValueError:
        raise KilnError(errors.InvalidParameterValue, f"CIDR block {value} is malformed") from None
    return str(net)


def _rules_of(
    tx: Tx, caller: Caller, group: SecurityGroupRecord, perms: Sequence[Permission], egress: bool
) -> list[RuleRecord]:
    if not perms:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter IpPermissions"
        )
    out: list[RuleRecord] = []
    for perm in perms:
        protocol = _protocol(perm.ip_protocol)
        lo, hi = _ports(protocol, perm.from_port, perm.to_port)
        if not perm.peers:
            raise KilnError(
                errors.InvalidParameterValue,
                "A permission needs at least one peer (CidrIp, CidrIpv6 or a group).",
            )
        for peer in perm.peers:
            base = RuleRecord("", group.group_id, egress, protocol, lo, hi,
                              description=peer.description)  # fmt: skip
            if peer.cidr_ipv4 is not None:
                rule = replace(base, cidr_ipv4=_cidr(peer.cidr_ipv4, False))
            elif peer.cidr_ipv6 is not None:
                rule = replace(base, cidr_ipv6=_cidr(peer.cidr_ipv6, True))
            elif peer.group_id or peer.group_name:
                ref = (
                    own_group(tx, caller, peer.group_id)
                    if peer.group_id
                    else cat.group_by_name(tx, group.vpc_id, peer.group_name or "")
                )
                if ref is None:
                    raise _not_found(peer.group_name or "")
                rule = replace(base, referenced_group_id=ref.group_id)
            else:
                raise KilnError(errors.InvalidParameterValue, "A peer needs a CIDR or a group.")
            out.append(rule)
    return out


def _describe_rule(r: RuleRecord) -> str:
    peer = r.cidr_ipv4 or r.cidr_ipv6 or r.referenced_group_id
    return f'"peer: {peer}, {r.ip_protocol.upper()}, from port: {r.from_port}, to port: {r.to_port}, ALLOW"'


def authorize(
    services: Services,
    caller: Caller,
    group_id: str | None,
    group_name: str | None,
    perms: Sequence[Permission],
    egress: bool,
    tag_specs: Sequence[TagSpec],
    dry_run_flag: bool,
) -> list[RuleRecord]:
    """AuthorizeSecurityGroupIngress/Egress: the new rules (each permission x peer one rule)."""
    check_tag_specs(tag_specs, ("security-group-rule",))
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        group = find_group(tx, caller, group_id, group_name)
        wanted = _rules_of(tx, caller, group, perms, egress)
        have = cat.rules_of(tx, [group.group_id])
        for i, rule in enumerate(wanted):
            if any(rule.same_permission(h) for h in have) or any(
                rule.same_permission(w) for w in wanted[:i]
            ):
                raise KilnError(
                    errors.InvalidPermissionDuplicate,
                    f"the specified rule {_describe_rule(rule)} already exists",
                )
        dry_run(dry_run_flag)
        made = [replace(r, rule_id=new_id("sgr")) for r in wanted]
        cat.insert_rules(tx, made)
        apply_tag_specs(tx, caller, tag_specs, {"security-group-rule": [r.rule_id for r in made]})
        made = cat.rules_by_id(tx, [r.rule_id for r in made], caller.account_id)
    _rules_changed(services, group.group_id)
    return made


def revoke(
    services: Services,
    caller: Caller,
    group_id: str | None,
    group_name: str | None,
    perms: Sequence[Permission],
    rule_ids: Sequence[str],
    egress: bool,
    dry_run_flag: bool,
) -> list[RuleRecord]:
    """RevokeSecurityGroupIngress/Egress by permissions or by SecurityGroupRuleIds; the rules
    removed."""
    ensure_for(services, caller)
    with services.catalog.write() as tx:
        group = find_group(tx, caller, group_id, group_name)
        have = [r for r in cat.rules_of(tx, [group.group_id]) if r.is_egress == egress]
        doomed: list[RuleRecord] = []
        for rid in dict.fromkeys(rule_ids):
            found = next((r for r in have if r.rule_id == rid), None)
            if found is None:
                raise KilnError(
                    errors.InvalidSecurityGroupRuleIdNotFound,
                    f"The security group rule ID '{rid}' does not exist",
                )
            doomed.append(found)
        if perms:
            for rule in _rules_of(tx, caller, group, perms, egress):
                found = next((h for h in have if rule.same_permission(h)), None)
                if found is None:
                    raise KilnError(
                        errors.InvalidPermissionNotFound,
                        "The specified rule does not exist in this security group.",
                    )
                doomed.append(found)
        if not doomed:
            raise KilnError(
                errors.MissingParameter,
                "The request must contain the parameter IpPermissions or SecurityGroupRuleIds",
            )
        dry_run(dry_run_flag)
        cat.delete_rules(tx, {r.rule_id for r in doomed})
    _rules_changed(services, group.group_id)
    return doomed


def authorize_security_group_ingress(
    services: Services, caller: Caller, group_id: str | None, group_name: str | None,
    perms: Sequence[Permission], tag_specs: Sequence[TagSpec], dry_run_flag: bool,
) -> list[RuleRecord]:  # fmt: skip
    return authorize(services, caller, group_id, group_name, perms, False, tag_specs, dry_run_flag)


def authorize_security_group_egress(
    services: Services, caller: Caller, group_id: str | None, group_name: str | None,
    perms: Sequence[Permission], tag_specs: Sequence[TagSpec], dry_run_flag: bool,
) -> list[RuleRecord]:  # fmt: skip
    return authorize(services, caller, group_id, group_name, perms, True, tag_specs, dry_run_flag)


def revoke_security_group_ingress(
    services: Services, caller: Caller, group_id: str | None, group_name: str | None,
    perms: Sequence[Permission], rule_ids: Sequence[str], dry_run_flag: bool,
) -> list[RuleRecord]:  # fmt: skip
    return revoke(services, caller, group_id, group_name, perms, rule_ids, False, dry_run_flag)


def revoke_security_group_egress(
    services: Services, caller: Caller, group_id: str | None, group_name: str | None,
    perms: Sequence[Permission], rule_ids: Sequence[str], dry_run_flag: bool,
) -> list[RuleRecord]:  # fmt: skip
    return revoke(services, caller, group_id, group_name, perms, rule_ids, True, dry_run_flag)


def _rules_changed(services: Services, group_id: str) -> None:
    from kiln.services.instances import vm_network  # the instance side depends on these rules

    vm_network.refresh_groups(services, [group_id])


# --- Describe ---------------------------------------------------------------------------------
def _perm_values(
    egress: bool, get: Callable[[RuleRecord], Iterable[str | None]]
) -> Callable[[GroupView], Iterable[str | None]]:
    return lambda v: [x for r in v.rules if r.is_egress == egress for x in get(r)]


def _port(n: int) -> str:
    return str(n)


GROUP_FILTERS: dict[str, Callable[[GroupView], Iterable[str | None]]] = {
    "group-id": lambda v: [v.group.group_id],
    "group-name": lambda v: [v.group.group_name],
    "description": lambda v: [v.group.description],
    "vpc-id": lambda v: [v.group.vpc_id],
    "owner-id": lambda v: [v.group.owner_id],
}
for _prefix, _egress in (("ip-permission.", False), ("egress.ip-permission.", True)):
    GROUP_FILTERS |= {
        _prefix + "protocol": _perm_values(_egress, lambda r: [r.ip_protocol]),
        _prefix + "from-port": _perm_values(_egress, lambda r: [_port(r.from_port)]),
        _prefix + "to-port": _perm_values(_egress, lambda r: [_port(r.to_port)]),
        _prefix + "cidr": _perm_values(_egress, lambda r: [r.cidr_ipv4]),
        _prefix + "ipv6-cidr": _perm_values(_egress, lambda r: [r.cidr_ipv6]),
        _prefix + "group-id": _perm_values(_egress, lambda r: [r.referenced_group_id]),
    }


def describe_security_groups(
    services: Services,
    caller: Caller,
    group_ids: Sequence[str],
    group_names: Sequence[str],
    filters: Sequence[Filter],
    dry_run_flag: bool,
) -> list[GroupView]:
    check_names(filters, GROUP_FILTERS)
    dry_run(dry_run_flag)
    ensure_for(services, caller)
    with services.catalog.read() as tx:
        if group_ids or group_names:
            picked = [own_group(tx, caller, g) for g in dict.fromkeys(group_ids)]
            picked += [find_group(tx, caller, None, n) for n in dict.fromkeys(group_names)]
            groups = list({g.group_id: g for g in picked}.values())  # with the caller's tags
        else:
            groups = cat.list_groups(tx, caller.account_id, caller.region, viewer=caller.account_id)
        rules = cat.rules_of(tx, [g.group_id for g in groups])
    by_group: dict[str, list[RuleRecord]] = {}
    for r in rules:
        by_group.setdefault(r.group_id, []).append(r)
    views = [GroupView(g, tuple(by_group.get(g.group_id, ()))) for g in groups]
    return [v for v in views if matches(v, v.group.tags, filters, GROUP_FILTERS)]


RULE_FILTERS: dict[str, Callable[[RuleRecord], Iterable[str | None]]] = {
    "group-id": lambda r: [r.group_id],
    "security-group-rule-id": lambda r: [r.rule_id],
}


def describe_security_group_rules(
    services: Services,
    caller: Caller,
    rule_ids: Sequence[str],
    filters: Sequence[Filter],
    dry_run_flag: bool,
) -> list[RuleRecord]:
    check_names(filters, RULE_FILTERS)
    dry_run(dry_run_flag)
    ensure_for(services, caller)
    with services.catalog.read() as tx:
        groups = cat.list_groups(tx, caller.account_id, caller.region)
        rules = cat.rules_of(tx, [g.group_id for g in groups], caller.account_id)
    if rule_ids:
        known = {r.rule_id for r in rules}
        missing = [r for r in rule_ids if r not in known]
        if missing:
            raise KilnError(
                errors.InvalidSecurityGroupRuleIdNotFound,
                f"The security group rule ID '{missing[0]}' does not exist",
            )
        rules = [r for r in rules if r.rule_id in set(rule_ids)]
    return [r for r in rules if matches(r, r.tags, filters, RULE_FILTERS)]
