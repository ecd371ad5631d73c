"""VPC, subnet and security group handlers (rules: kiln/services/networks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from kiln.aws.context import RequestContext
from kiln.catalog.networks import RuleRecord, SecurityGroupRecord, VpcRecord
from kiln.ec2.tags import (
    Params,
    caller_of,
    dicts,
    filters,
    flag,
    opt_int,
    opt_str,
    services_of,
    strs,
    tag_specs,
    tags_out,
)
from kiln.services.networks import security_groups as sg
from kiln.services.networks import vpcs as rules
from kiln.services.networks.vpcs import SubnetView
from kiln.services.regions.availability_zones import zone_id


def _arn(region: str, owner: str, kind: str, rid: str) -> str:
    return f"arn:aws:ec2:{region}:{owner}:{kind}/{rid}"


# --- VPCs and subnets -------------------------------------------------------------------------
def vpc_out(v: VpcRecord) -> dict[str, object]:
    return {
        "VpcId": v.vpc_id,
        "OwnerId": v.owner_id,
        "State": v.state,
        "CidrBlock": v.cidr_block,
        "CidrBlockAssociationSet": [
            {
                "AssociationId": "vpc-cidr-assoc-" + v.vpc_id.removeprefix("vpc-"),
                "CidrBlock": v.cidr_block,
                "CidrBlockState": {"State": "associated"},
            }
        ],
        "DhcpOptionsId": "default",
        "InstanceTenancy": "default",
        "IsDefault": v.is_default,
        "Tags": tags_out(v.tags),
    }


def subnet_out(view: SubnetView) -> dict[str, object]:
    s = view.subnet
    return {
        "SubnetId": s.subnet_id,
        "SubnetArn": _arn(s.region, s.owner_id, "subnet", s.subnet_id),
        "VpcId": s.vpc_id,
        "OwnerId": s.owner_id,
        "State": s.state,
        "CidrBlock": s.cidr_block,
        "AvailabilityZone": s.availability_zone,
        "AvailabilityZoneId": zone_id(s.region, s.availability_zone),
        "AvailableIpAddressCount": view.available_ips,
        "DefaultForAz": s.default_for_az,
        "MapPublicIpOnLaunch": s.map_public_ip_on_launch,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "Ipv6Native": False,
        "EnableDns64": False,
        "Tags": tags_out(s.tags),
    }


def create_vpc(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    v = rules.create_vpc(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "CidrBlock"),
        tag_specs(params),
        flag(params, "DryRun"),
    )
    return {"Vpc": vpc_out(v)}


def delete_vpc(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_vpc(
        services_of(ctx), caller_of(ctx), opt_str(params, "VpcId"), flag(params, "DryRun")
    )
    return {}


def describe_vpcs(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = rules.describe_vpcs(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("VpcIds")),
        filters(params),
        flag(params, "DryRun"),
    )
    return {"Vpcs": [vpc_out(v) for v in found]}


def create_subnet(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    view = rules.create_subnet(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "VpcId"),
        opt_str(params, "CidrBlock"),
        opt_str(params, "AvailabilityZone"),
        tag_specs(params),
        flag(params, "DryRun"),
    )
    return {"Subnet": subnet_out(view)}


def delete_subnet(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    rules.delete_subnet(
        services_of(ctx), caller_of(ctx), opt_str(params, "SubnetId"), flag(params, "DryRun")
    )
    return {}


def describe_subnets(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = rules.describe_subnets(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("SubnetIds")),
        filters(params),
        flag(params, "DryRun"),
    )
    return {"Subnets": [subnet_out(v) for v in found]}


# --- security groups --------------------------------------------------------------------------
def _permissions(params: Params) -> tuple[sg.Permission, ...]:
    perms = []
    for p in dicts(params.get("IpPermissions")):
        peers = [sg.Peer(cidr_ipv4=opt_str(r, "CidrIp"), description=opt_str(r, "Description"))
                 for r in dicts(p.get("IpRanges"))]  # fmt: skip
        peers += [sg.Peer(cidr_ipv6=opt_str(r, "CidrIpv6"), description=opt_str(r, "Description"))
                  for r in dicts(p.get("Ipv6Ranges"))]  # fmt: skip
        peers += [
            sg.Peer(group_id=opt_str(r, "GroupId"), group_name=opt_str(r, "GroupName"),
                    description=opt_str(r, "Description"))
            for r in dicts(p.get("UserIdGroupPairs"))
        ]  # fmt: skip
        perms.append(
            sg.Permission(
                opt_str(p, "IpProtocol"), opt_int(p, "FromPort"), opt_int(p, "ToPort"), tuple(peers)
            )
        )
    flat_peer = None
    if opt_str(params, "CidrIp"):
        flat_peer = sg.Peer(cidr_ipv4=opt_str(params, "CidrIp"))
    elif opt_str(params, "SourceSecurityGroupName"):
        flat_peer = sg.Peer(group_name=opt_str(params, "SourceSecurityGroupName"))
    if flat_peer is not None or opt_str(params, "IpProtocol"):
        perms.append(
            sg.Permission(
                opt_str(params, "IpProtocol") or "-1",
                opt_int(params, "FromPort"),
                opt_int(params, "ToPort"),
                (flat_peer,) if flat_peer is not None else (),
            )
        )
    return tuple(perms)


def rule_out(r: RuleRecord, group: SecurityGroupRecord | None = None) -> dict[str, object]:
    owner = group.owner_id if group is not None else None
    return {
        "SecurityGroupRuleId": r.rule_id,
        "GroupId": r.group_id,
        "GroupOwnerId": owner,
        "IsEgress": r.is_egress,
        "IpProtocol": r.ip_protocol,
        "FromPort": r.from_port,
        "ToPort": r.to_port,
        "CidrIpv4": r.cidr_ipv4,
        "CidrIpv6": r.cidr_ipv6,
        "ReferencedGroupInfo": {"GroupId": r.referenced_group_id, "UserId": owner}
        if r.referenced_group_id
        else None,
        "Description": r.description,
        "Tags": tags_out(r.tags) or [],
        "SecurityGroupRuleArn": _arn(group.region, group.owner_id, "security-group-rule", r.rule_id)
        if group is not None
        else None,
    }


def _ip_permissions(rules_: Sequence[RuleRecord], owner: str) -> list[dict[str, object]]:
    """EC2's grouped form: one IpPermission per (protocol, ports) with all its peers."""

    def key(r: RuleRecord) -> tuple[str, int, int]:
        return (r.ip_protocol, r.from_port, r.to_port)

    out = []
    for (proto, lo, hi), group in groupby(sorted(rules_, key=key), key=key):
        rs = list(group)
        perm: dict[str, object] = {
            "IpProtocol": proto,
            "IpRanges": [{"CidrIp": r.cidr_ipv4, "Description": r.description}
                         for r in rs if r.cidr_ipv4],
            "Ipv6Ranges": [{"CidrIpv6": r.cidr_ipv6, "Description": r.description}
                           for r in rs if r.cidr_ipv6],
            "UserIdGroupPairs": [
                {"GroupId": r.referenced_group_id, "UserId": owner, "Description": r.description}
                for r in rs if r.referenced_group_id
            ],
            "PrefixListIds": [],
        }  # fmt: skip
        if proto != "-1":
            perm["FromPort"], perm["ToPort"] = lo, hi
        out.append(perm)
    return out


def group_out(v: sg.GroupView) -> dict[str, object]:
    g = v.group
    return {
        "GroupId": g.group_id,
        "GroupName": g.group_name,
        "Description": g.description,
        "VpcId": g.vpc_id,
        "OwnerId": g.owner_id,
        "SecurityGroupArn": _arn(g.region, g.owner_id, "security-group", g.group_id),
        "IpPermissions": _ip_permissions([r for r in v.rules if not r.is_egress], g.owner_id),
        "IpPermissionsEgress": _ip_permissions([r for r in v.rules if r.is_egress], g.owner_id),
        "Tags": tags_out(g.tags),
    }


def create_security_group(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    g = sg.create_security_group(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "GroupName"),
        opt_str(params, "Description"),
        opt_str(params, "VpcId"),
        tag_specs(params),
        flag(params, "DryRun"),
    )
    return {
        "GroupId": g.group_id,
        "Tags": tags_out(g.tags),
        "SecurityGroupArn": _arn(g.region, g.owner_id, "security-group", g.group_id),
    }


def delete_security_group(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    g = sg.delete_security_group(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "GroupId"),
        opt_str(params, "GroupName"),
        flag(params, "DryRun"),
    )
    return {"Return": True, "GroupId": g.group_id}


def describe_security_groups(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = sg.describe_security_groups(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("GroupIds")),
        strs(params.get("GroupNames")),
        filters(params),
        flag(params, "DryRun"),
    )
    return {"SecurityGroups": [group_out(v) for v in found]}


def _authorize(ctx: RequestContext, params: Params, egress: bool) -> Mapping[str, object]:
    services, caller = services_of(ctx), caller_of(ctx)
    rule = sg.authorize_security_group_egress if egress else sg.authorize_security_group_ingress
    made = rule(
        services,
        caller,
        opt_str(params, "GroupId"),
        opt_str(params, "GroupName"),
        _permissions(params),
        tag_specs(params),
        flag(params, "DryRun"),
    )
    with services.catalog.read() as tx:
        group = sg.own_group(tx, caller, made[0].group_id) if made else None
    return {"Return": True, "SecurityGroupRules": [rule_out(r, group) for r in made]}


def _revoke(ctx: RequestContext, params: Params, egress: bool) -> Mapping[str, object]:
    rule = sg.revoke_security_group_egress if egress else sg.revoke_security_group_ingress
    gone = rule(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "GroupId"),
        opt_str(params, "GroupName"),
        _permissions(params),
        strs(params.get("SecurityGroupRuleIds")),
        flag(params, "DryRun"),
    )
    return {
        "Return": True,
        "RevokedSecurityGroupRules": [
            {
                "SecurityGroupRuleId": r.rule_id,
                "GroupId": r.group_id,
                "IsEgress": r.is_egress,
                "IpProtocol": r.ip_protocol,
                "FromPort": r.from_port,
                "ToPort": r.to_port,
                "CidrIpv4": r.cidr_ipv4,
                "CidrIpv6": r.cidr_ipv6,
                "ReferencedGroupId": r.referenced_group_id,
                "Description": r.description,
            }
            for r in gone
        ],
    }


def authorize_security_group_ingress(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _authorize(ctx, params, egress=False)


def authorize_security_group_egress(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _authorize(ctx, params, egress=True)


def revoke_security_group_ingress(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _revoke(ctx, params, egress=False)


def revoke_security_group_egress(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _revoke(ctx, params, egress=True)


def describe_security_group_rules(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    services, caller = services_of(ctx), caller_of(ctx)
    found = sg.describe_security_group_rules(
        services,
        caller,
        strs(params.get("SecurityGroupRuleIds")),
        filters(params),
        flag(params, "DryRun"),
    )
    with services.catalog.read() as tx:
        groups = {r.group_id: sg.own_group(tx, caller, r.group_id) for r in found}
    return {"SecurityGroupRules": [rule_out(r, groups[r.group_id]) for r in found]}
