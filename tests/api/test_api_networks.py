"""VPCs, subnets and security groups over HTTP with unmodified boto3 and the AWS CLI, against a
live `kiln serve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from api_live import ApiWorld


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def ssh_from(cidr: str) -> list[dict[str, Any]]:
    return [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": cidr}]}]


def test_every_account_has_a_default_vpc_with_a_subnet_per_zone_and_a_default_group(
    api: ApiWorld,
) -> None:
    ec2 = api.kiln.client(api.grantee, region="eu-west-1")
    with ThreadPoolExecutor(4) as pool:  # first use from several requests at once: made once
        answers = list(pool.map(lambda _: ec2.describe_vpcs()["Vpcs"], range(4)))
    defaults = [[v["VpcId"] for v in a if v["IsDefault"]] for a in answers]
    assert all(len(d) == 1 and d == defaults[0] for d in defaults)
    vpc = next(v for v in answers[0] if v["IsDefault"])
    assert vpc["CidrBlock"] == "172.31.0.0/16" and vpc["State"] == "available"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("eu-west-1a", "172.31.0.0/20"),
        ("eu-west-1b", "172.31.16.0/20"),
        ("eu-west-1c", "172.31.32.0/20"),
    ]
    assert all(s["DefaultForAz"] and s["AvailableIpAddressCount"] == 4091 for s in subnets)
    (group,) = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "SecurityGroups"
    ]
    assert group["GroupName"] == "default"
    assert group["IpPermissions"] == [
        {
            "IpProtocol": "-1",
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": group["GroupId"], "UserId": api.grantee.account_id}],
        }
    ]
    assert group["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    # another account sees none of it
    other = api.kiln.client(api.stranger, region="eu-west-1")
    assert vpc["VpcId"] not in {v["VpcId"] for v in other.describe_vpcs()["Vpcs"]}
    with pytest.raises(ClientError) as e:
        other.describe_security_groups(GroupIds=[group["GroupId"]])
    assert code(e) == "InvalidGroup.NotFound"


def test_vpcs_and_subnets_are_made_checked_and_deleted(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}],
    )["Vpc"]
    vid = vpc["VpcId"]
    assert vpc["IsDefault"] is False and vpc["Tags"] == [{"Key": "Name", "Value": "lab"}]
    assert (
        ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lab"]}])["Vpcs"][0]["VpcId"]
        == vid
    )
    for bad, want in (
        ("10.0.0.0/8", "InvalidVpc.Range"),
        ("10.0.0.0/29", "InvalidVpc.Range"),
        ("10.0.0.1/16", "InvalidParameterValue"),
        ("nope", "InvalidParameterValue"),
    ):
        with pytest.raises(ClientError) as e:
            ec2.create_vpc(CidrBlock=bad)
        assert code(e) == want, bad
    sub = ec2.create_subnet(VpcId=vid, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1b")[
        "Subnet"
    ]
    assert sub["AvailableIpAddressCount"] == 251 and sub["DefaultForAz"] is False
    for cidr, az, want in (
        ("10.21.0.0/24", None, "InvalidSubnet.Range"),
        ("10.20.1.128/25", None, "InvalidSubnet.Conflict"),
        ("10.20.2.0/24", "us-east-1z", "InvalidParameterValue"),
    ):
        kw = {"AvailabilityZone": az} if az else {}
        with pytest.raises(ClientError) as e:
            ec2.create_subnet(VpcId=vid, CidrBlock=cidr, **kw)
        assert code(e) == want, cidr
    with pytest.raises(ClientError) as e:
        ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.0.0/24")
    assert code(e) == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.delete_vpc(VpcId=vid)
    assert code(e) == "DependencyViolation"
    ec2.delete_subnet(SubnetId=sub["SubnetId"])
    with pytest.raises(ClientError) as e:
        ec2.describe_subnets(SubnetIds=[sub["SubnetId"]])
    assert code(e) == "InvalidSubnetID.NotFound"
    ec2.delete_vpc(VpcId=vid)
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=[vid])
    assert code(e) == "InvalidVpcID.NotFound"


def test_security_group_rules_round_trip_with_boto3_and_the_cli(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    name = f"web-{secrets.token_hex(3)}"
    gid = ec2.create_security_group(GroupName=name, Description="web servers")["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName=name, Description="again")
    assert code(e) == "InvalidGroup.Duplicate"
    made = ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            *ssh_from("0.0.0.0/0"),
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443,
             "IpRanges": [{"CidrIp": "127.0.0.0/8", "Description": "local"}]},
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gid}]},
        ],
    )["SecurityGroupRules"]  # fmt: skip
    assert len(made) == 3 and all(r["SecurityGroupRuleId"].startswith("sgr-") for r in made)
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh_from("0.0.0.0/0"))
    assert code(e) == "InvalidPermission.Duplicate"
    for perm in (
        {"IpProtocol": "tcp", "FromPort": 70000, "ToPort": 70001, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "300.0.0.0/0"}]},
        {"IpProtocol": "bogus", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ):  # fmt: skip
        with pytest.raises(ClientError) as e:
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
        assert code(e) == "InvalidParameterValue", perm
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(
            GroupId=gid,
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-00000000000000000"}]}],
        )  # fmt: skip
    assert code(e) == "InvalidGroup.NotFound"

    group = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    ports = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group["IpPermissions"]}
    assert ports == {("tcp", 22, 22), ("tcp", 80, 443), ("-1", None, None)}
    assert group["IpPermissionsEgress"][0]["IpProtocol"] == "-1"  # new groups let all out
    found = ec2.describe_security_groups(
        Filters=[{"Name": "ip-permission.from-port", "Values": ["80"]}]
    )["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [gid]

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])[
        "SecurityGroupRules"
    ]
    assert len(rules) == 4 and {r["IsEgress"] for r in rules} == {True, False}
    ssh_rule = next(r for r in rules if r.get("FromPort") == 22)
    cli = api.kiln.aws(
        api.owner, "revoke-security-group-ingress", "--group-id", gid,
        "--security-group-rule-ids", ssh_rule["SecurityGroupRuleId"],
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Return"] is True
    cli = api.kiln.aws(api.owner, "describe-security-group-rules",
                       "--security-group-rule-ids", ssh_rule["SecurityGroupRuleId"])  # fmt: skip
    assert cli.returncode != 0 and "InvalidSecurityGroupRuleId.NotFound" in cli.stderr
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=ssh_from("0.0.0.0/0"))
    assert code(e) == "InvalidPermission.NotFound"
    ec2.revoke_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443,
                        "IpRanges": [{"CidrIp": "127.0.0.0/8"}]}],
    )  # fmt: skip
    cli = api.kiln.aws(api.owner, "authorize-security-group-ingress", "--group-id", gid,
                       "--protocol", "tcp", "--port", "8080", "--cidr", "127.0.0.1/32")  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    left = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"]
    assert {(p["IpProtocol"], p.get("FromPort")) for p in left} == {("-1", None), ("tcp", 8080)}


def test_groups_in_use_or_default_cannot_be_deleted(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    a = ec2.create_security_group(GroupName=f"a-{secrets.token_hex(3)}", Description="a")["GroupId"]
    b = ec2.create_security_group(GroupName=f"b-{secrets.token_hex(3)}", Description="b")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=b, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": a}]}]
    )
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=a)  # b's rule names a
    assert code(e) == "DependencyViolation"
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert code(e) == "CannotDelete"
    ec2.delete_security_group(GroupId=b)
    ec2.delete_security_group(GroupId=a)
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=a)
    assert code(e) == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="sg-x", Description="x")
    assert code(e) == "InvalidParameterValue"
