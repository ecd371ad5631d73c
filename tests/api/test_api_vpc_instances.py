"""Instances on VPC networks, end to end: a live ``kiln serve --network netns`` (root), unmodified
boto3 and the AWS CLI, real micro guests under QEMU.

Three guests: A and B in the default VPC (its default group lets members reach each other), C
in a second VPC whose CIDR overlaps the default one. What a user notices: SSH at
``PublicIpAddress:22`` with OpenSSH and paramiko, only while an ingress rule allows it (added
and revoked on the running instance), A reaches B and C reaches neither, the metadata service
answers v1 and v2 from inside the guest and refuses v1 under ``HttpTokens=required``, and
DescribeInstances filters by VPC and subnet.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from api_live import Creds, LiveKiln

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="VPC networks need root (network namespaces)"),
]

REGION = "us-east-1"
WAIT = 300.0  # a guard against hanging forever, never a speed requirement
MD = "http://169.254.169.254/latest/meta-data"


def _until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return got


@dataclass
class Vpcs:
    kiln: LiveKiln
    owner: Creds
    ec2: Any
    key_file: Path
    default_vpc: str
    default_group: str
    other_vpc: str
    other_subnet: str
    a: dict[str, Any]
    b: dict[str, Any]
    c: dict[str, Any]

    def fresh(self, inst: dict[str, Any]) -> dict[str, Any]:
        got = self.ec2.describe_instances(InstanceIds=[inst["InstanceId"]])
        return dict(got["Reservations"][0]["Instances"][0])


def _paramiko(ip: str, key_file: Path, command: str) -> str:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        ip,
        port=22,
        username="root",
        pkey=paramiko.Ed25519Key.from_private_key_file(str(key_file)),
        look_for_keys=False,
        allow_agent=False,
        timeout=30,
        banner_timeout=30,
    )
    try:
        _, out, _ = client.exec_command(command, timeout=60)
        return str(out.read().decode())
    finally:
        client.close()


def _openssh(ip: str, key_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key_file), "-p", "22", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=20", f"root@{ip}", command],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def _port_open(ip: str, port: int = 22) -> bool:
    try:
        socket.create_connection((ip, port), timeout=5).close()
        return True
    except OSError:
        return False


def _ssh_rule(cidr: str = "0.0.0.0/0") -> list[dict[str, Any]]:
    return [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": cidr}]}]


@pytest.fixture(scope="module")
def vpcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vpcs]:
    data_dir = tmp_path_factory.mktemp("kiln-vpcs")
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"
    kiln = LiveKiln(data_dir, None)
    kiln.serve_args = (*kiln.serve_args, "--network", "netns")
    ec2: Any = None
    try:
        baked = kiln.kiln("bake", "micro", "--data-dir", str(data_dir), "--json")
        assert baked.returncode == 0, baked.stderr
        micro = next(r for r in json.loads(baked.stdout) if r["Region"] == REGION)["ImageId"]
        kiln.start()
        owner = kiln.account("owner")
        ec2 = kiln.client(owner)
        key = ec2.create_key_pair(KeyName="vpc-key", KeyType="ed25519")
        key_file = data_dir / "vpc-key.pem"
        key_file.write_text(key["KeyMaterial"])
        key_file.chmod(0o600)

        default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])[
            "Vpcs"
        ][0]["VpcId"]
        default_group = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [default_vpc]},
                {"Name": "group-name", "Values": ["default"]},
            ]
        )["SecurityGroups"][0]["GroupId"]
        other = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
        other_subnet = ec2.create_subnet(VpcId=other, CidrBlock="172.31.0.0/24")["Subnet"][
            "SubnetId"
        ]
        open_group = ec2.create_security_group(
            GroupName="open", Description="ssh from anywhere", VpcId=other
        )["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=open_group, IpPermissions=_ssh_rule())

        def run(**kw: Any) -> dict[str, Any]:
            r = ec2.run_instances(
                ImageId=micro, MinCount=1, MaxCount=1, InstanceType="t3.nano",
                KeyName="vpc-key", **kw,
            )  # fmt: skip
            return dict(r["Instances"][0])

        a = run()
        b = run()
        # C's own address must not be A's (.4, the first free one) for the isolation probe
        c = run(
            SubnetId=other_subnet, SecurityGroupIds=[open_group], PrivateIpAddress="172.31.0.99"
        )
        for inst in (a, b, c):
            iid = inst["InstanceId"]
            _until(
                f"{iid} ready",
                lambda iid=iid: (
                    f"KILN-READY instance-id={iid}"
                    in (ec2.get_console_output(InstanceId=iid).get("Output") or "")
                ),
            )
        world = Vpcs(
            kiln, owner, ec2, key_file, default_vpc, default_group, other, other_subnet, a, b, c
        )
        world.a, world.b, world.c = (world.fresh(i) for i in (a, b, c))
        yield world
    finally:
        try:
            if ec2 is not None and kiln.proc is not None and kiln.proc.poll() is None:
                ids = [
                    i["InstanceId"]
                    for r in ec2.describe_instances()["Reservations"]
                    for i in r["Instances"]
                ]
                if ids:
                    ec2.terminate_instances(InstanceIds=ids)
        finally:
            kiln.stop()
            kiln.kill_vms()
            kiln.release_networks()
            if saved is None:
                os.environ.pop("KILN_ACCEL", None)
            else:
                os.environ["KILN_ACCEL"] = saved


def test_instances_have_their_own_addresses_and_vpc_fields(vpcs: Vpcs) -> None:
    publics = [i["PublicIpAddress"] for i in (vpcs.a, vpcs.b, vpcs.c)]
    assert len(set(publics)) == 3
    for ip in publics:
        assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("127.0.0.0/8")
        assert ip != "127.0.0.1"
    for inst, vpc in ((vpcs.a, vpcs.default_vpc), (vpcs.b, vpcs.default_vpc)):
        assert inst["VpcId"] == vpc and inst["PublicDnsName"] == ""
        subnet = vpcs.ec2.describe_subnets(SubnetIds=[inst["SubnetId"]])["Subnets"][0]
        assert subnet["VpcId"] == vpc and subnet["DefaultForAz"] is True
        assert subnet["AvailabilityZone"] == inst["Placement"]["AvailabilityZone"]
        net = ipaddress.IPv4Network(subnet["CidrBlock"])
        assert ipaddress.IPv4Address(inst["PrivateIpAddress"]) in net
        assert [g["GroupName"] for g in inst["SecurityGroups"]] == ["default"]
        nif = inst["NetworkInterfaces"][0]
        assert (
            nif["SubnetId"] == inst["SubnetId"]
            and nif["PrivateIpAddress"] == (inst["PrivateIpAddress"])
        )
    assert vpcs.c["VpcId"] == vpcs.other_vpc and vpcs.c["SubnetId"] == vpcs.other_subnet
    assert vpcs.c["PrivateIpAddress"] == "172.31.0.99"

    def ids(**filters: str) -> set[str]:
        got = vpcs.ec2.describe_instances(
            Filters=[{"Name": k.replace("_", "-"), "Values": [v]} for k, v in filters.items()]
        )
        return {i["InstanceId"] for r in got["Reservations"] for i in r["Instances"]}

    a, b, c = (i["InstanceId"] for i in (vpcs.a, vpcs.b, vpcs.c))
    assert ids(vpc_id=vpcs.default_vpc) == {a, b}
    assert ids(vpc_id=vpcs.other_vpc) == {c}
    assert ids(subnet_id=vpcs.other_subnet) == {c}
    assert ids(ip_address=vpcs.a["PublicIpAddress"]) == {a}
    assert ids(private_ip_address=vpcs.b["PrivateIpAddress"]) == {b}
    assert ids(**{"instance.group-id": vpcs.default_group}) == {a, b}


def test_ssh_follows_the_ingress_rules_of_a_running_instance(vpcs: Vpcs) -> None:
    ip = vpcs.a["PublicIpAddress"]
    assert not _port_open(ip)  # the default group lets in its members only
    got = vpcs.ec2.authorize_security_group_ingress(
        GroupId=vpcs.default_group, IpPermissions=_ssh_rule()
    )
    rule_id = got["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    try:
        done = _openssh(ip, vpcs.key_file, "cat /sys/class/net/eth0/address; hostname")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [
            vpcs.a["NetworkInterfaces"][0]["MacAddress"],
            vpcs.a["InstanceId"],
        ]
        out = _paramiko(ip, vpcs.key_file, "ip -4 -o addr show dev eth0")
        assert f"inet {vpcs.a['PrivateIpAddress']}/" in out  # DHCP gave the recorded address
    finally:
        revoked = vpcs.kiln.aws(
            vpcs.owner, "revoke-security-group-ingress",
            "--group-id", vpcs.default_group, "--security-group-rule-ids", rule_id,
        )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    assert not _port_open(ip)
    vpcs.ec2.authorize_security_group_ingress(GroupId=vpcs.default_group, IpPermissions=_ssh_rule())
    assert _paramiko(ip, vpcs.key_file, "hostname").strip() == vpcs.a["InstanceId"]


def _probe(vpcs: Vpcs, src: dict[str, Any], dst: dict[str, Any]) -> bool:
    out = _paramiko(
        src["PublicIpAddress"],
        vpcs.key_file,
        f"echo | nc -w 3 {dst['PrivateIpAddress']} 22 | head -c 16; echo",
    )
    return "SSH-2.0" in out


def _ensure_ssh(vpcs: Vpcs) -> None:
    """tcp/22 open in the default group (also when a test before failed half-way)."""
    if not _port_open(vpcs.a["PublicIpAddress"]):
        vpcs.ec2.authorize_security_group_ingress(
            GroupId=vpcs.default_group, IpPermissions=_ssh_rule()
        )


def test_one_vpc_reaches_itself_and_not_another(vpcs: Vpcs) -> None:
    _ensure_ssh(vpcs)
    assert _probe(vpcs, vpcs.a, vpcs.b)  # same VPC, across the default group
    assert _probe(vpcs, vpcs.b, vpcs.a)
    assert vpcs.a["PrivateIpAddress"] != vpcs.c["PrivateIpAddress"]
    assert not _probe(vpcs, vpcs.c, vpcs.a)  # other VPC, same CIDR: not routed


def test_metadata_v1_v2_and_http_tokens_required(vpcs: Vpcs) -> None:
    _ensure_ssh(vpcs)
    b = vpcs.b
    v1 = f"wget -q -O - {MD}/instance-id; echo; wget -q -O - {MD}/local-ipv4 2>&1; echo"
    assert _paramiko(b["PublicIpAddress"], vpcs.key_file, v1).split() == [
        b["InstanceId"],
        b["PrivateIpAddress"],
    ]
    v2 = (
        "T=$(printf 'PUT /latest/api/token HTTP/1.0\\r\\n"
        "X-aws-ec2-metadata-token-ttl-seconds: 60\\r\\n\\r\\n' "
        "| nc -w 5 169.254.169.254 80 | tail -n 1); "
        f'wget -q -O - --header "X-aws-ec2-metadata-token: $T" {MD}/public-ipv4; echo; '
        f"wget -q -O - {MD}/instance-id 2>&1; echo"
    )
    got = vpcs.ec2.modify_instance_metadata_options(
        InstanceId=b["InstanceId"], HttpTokens="required"
    )
    assert got["InstanceMetadataOptions"]["HttpTokens"] == "required"
    out = _paramiko(b["PublicIpAddress"], vpcs.key_file, v2)
    first, rest = out.split("\n", 1)
    assert first == b["PublicIpAddress"], out
    assert "401" in rest and b["InstanceId"] not in rest, out
    assert vpcs.fresh(b)["MetadataOptions"]["HttpTokens"] == "required"


def test_file_uploads_and_rsa_host_keys_work_on_the_micro_guest(vpcs: Vpcs, tmp_path: Path) -> None:
    """What provisioners do: connect asking for an RSA host key (Go's SSH, older OpenSSH
    setups), copy a file with legacy scp, with SFTP-based scp, and with paramiko's SFTP."""
    _ensure_ssh(vpcs)
    ip = vpcs.a["PublicIpAddress"]
    rsa = _openssh(ip, vpcs.key_file, "echo rsa-ok")
    assert rsa.returncode == 0, rsa.stderr
    only_rsa = subprocess.run(
        ["ssh", "-i", str(vpcs.key_file), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-o", "HostKeyAlgorithms=rsa-sha2-256", "-o", "ConnectTimeout=60",
         f"root@{ip}", "echo rsa-ok"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert only_rsa.returncode == 0 and only_rsa.stdout.strip() == "rsa-ok", only_rsa.stderr
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300_000))
    digest = subprocess.run(["sha256sum", str(blob)], capture_output=True, text=True).stdout[:64]
    common = ["-i", str(vpcs.key_file), "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]  # fmt: skip
    for flag, name in (("-O", "legacy"), ("-s", "sftp")):
        done = subprocess.run(
            ["scp", flag, *common, str(blob), f"root@{ip}:/root/{name}.bin"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, (name, done.stderr)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(ip, username="root", key_filename=str(vpcs.key_file), look_for_keys=False,
                   allow_agent=False, timeout=30)  # fmt: skip
    try:
        sftp = client.open_sftp()
        sftp.put(str(blob), "/root/paramiko.bin")
        sftp.close()
    finally:
        client.close()
    sums = _paramiko(ip, vpcs.key_file, "cd /root && sha256sum legacy.bin sftp.bin paramiko.bin")
    assert [line.split()[0] for line in sums.splitlines()] == [digest] * 3, sums


def test_a_terminated_instances_address_serves_the_next_one(vpcs: Vpcs) -> None:
    """EC2 reuses private addresses; the DHCP lease of the old MAC must not keep the new
    instance from getting it."""
    _ensure_ssh(vpcs)
    b = vpcs.b
    vpcs.ec2.terminate_instances(InstanceIds=[b["InstanceId"]])
    _until(f"{b['InstanceId']} terminated", lambda: vpcs.fresh(b)["State"]["Name"] == "terminated")
    assert "PublicIpAddress" not in vpcs.fresh(b)
    image = vpcs.fresh(vpcs.a)["ImageId"]
    d = vpcs.ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.nano", KeyName="vpc-key"
    )["Instances"][0]
    assert d["PrivateIpAddress"] == b["PrivateIpAddress"]
    iid = d["InstanceId"]
    _until(
        f"{iid} ready",
        lambda: (
            f"KILN-READY instance-id={iid}"
            in (vpcs.ec2.get_console_output(InstanceId=iid).get("Output") or "")
        ),
    )
    d = vpcs.fresh(d)
    out = _paramiko(d["PublicIpAddress"], vpcs.key_file, "ip -4 -o addr show dev eth0; hostname")
    assert f"inet {b['PrivateIpAddress']}/" in out and iid in out, out
