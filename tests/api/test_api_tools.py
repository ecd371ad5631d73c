"""The real tools end to end, unchanged, against a live ``kiln serve --network netns`` (root):
Debian's ``packer`` (amazon-ebs builder, SSH communicator) and ``ansible-playbook`` with the
``amazon.aws`` collection, each building on a real micro guest under QEMU.

- Packer: an amazon-ebs template with a shell and a file provisioner, ``ami_users``,
  ``ami_regions`` and tags builds an image; launched, the image has the provisioned files, the
  copy in the second region exists, the grantee may launch it and the tags are on it.
- Ansible: a playbook launches an instance in the default VPC (``ec2_instance``, waiting for
  it), manages it over SSH (a file written by the ``copy`` module, a command), makes an image of
  it (``ec2_ami``) and removes image and snapshot with ``state=absent``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_live import REGIONS, Creds, LiveKiln, open_ssh, ssh_address

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="VPC networks need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed"),
]

REGION, OTHER = REGIONS
WAIT = 600.0  # a guard against hanging forever, never a speed requirement


def _until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return got


@dataclass
class Tools:
    kiln: LiveKiln
    owner: Creds
    grantee: Creds
    micro: str
    work: Path

    def ec2(self, creds: Creds | None = None, region: str = REGION) -> Any:
        return self.kiln.client(creds or self.owner, region=region)

    def env(self) -> dict[str, str]:
        """A clean environment for a tool: the owner's keys, no AWS config, no phoning home."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.work),
            "AWS_ACCESS_KEY_ID": self.owner.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.owner.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "CHECKPOINT_DISABLE": "1",
            "PACKER_CACHE_DIR": str(self.work / "packer-cache"),
            "PACKER_LOG": "1",
            "PACKER_LOG_PATH": str(self.work / "packer.log"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(self.work / "ansible-tmp"),
        }

    def ready(self, instance_id: str, region: str = REGION) -> None:
        ec2 = self.ec2(region=region)
        _until(
            f"{instance_id} ready",
            lambda: (
                f"KILN-READY instance-id={instance_id}"
                in (ec2.get_console_output(InstanceId=instance_id).get("Output") or "")
            ),
        )

    def ssh(self, inst: dict[str, Any], key: Path, command: str) -> str:
        host, port = ssh_address(inst)
        res = subprocess.run(
            ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
             "-o", "ConnectTimeout=20", f"root@{host}", command],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        return res.stdout


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tools]:
    data_dir = tmp_path_factory.mktemp("kiln-tools")
    work = tmp_path_factory.mktemp("tools-work")
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"
    kiln = LiveKiln(data_dir, None)
    kiln.serve_args = (*kiln.serve_args, "--network", "netns")
    try:
        baked = kiln.kiln("bake", "micro", "--data-dir", str(data_dir), "--json")
        assert baked.returncode == 0, baked.stderr
        micro = next(r for r in json.loads(baked.stdout) if r["Region"] == REGION)["ImageId"]
        kiln.start()
        yield Tools(kiln, kiln.account("owner"), kiln.account("grantee"), micro, work)
    finally:
        kiln.stop()
        kiln.kill_vms()
        kiln.release_networks()
        if saved is None:
            os.environ.pop("KILN_ACCEL", None)
        else:
            os.environ["KILN_ACCEL"] = saved


def _packer_template(t: Tools, payload: Path) -> dict[str, Any]:
    return {
        "builders": [
            {
                "type": "amazon-ebs",
                "region": REGION,
                "custom_endpoint_ec2": t.kiln.url,
                "source_ami": t.micro,
                "instance_type": "t3.nano",
                "ssh_username": "root",
                "ssh_timeout": "10m",
                "ami_name": "packer-built-{{timestamp}}",
                "ami_description": "made by packer against kiln",
                "ami_users": [t.grantee.account_id],
                "snapshot_users": [t.grantee.account_id],
                "ami_regions": [OTHER],
                "tags": {"Builder": "packer", "Base": "{{ .SourceAMI }}"},
                "snapshot_tags": {"Builder": "packer"},
                "run_tags": {"Name": "packer-builder"},
            }
        ],
        "provisioners": [
            {
                "type": "shell",
                "inline": [
                    "echo provisioned-by-shell > /root/from-shell",
                    "uname -r > /root/kernel",
                    "sync",
                ],
            },
            {"type": "file", "source": str(payload), "destination": "/root/payload.txt"},
            {
                "type": "shell",
                "inline": ["sha256sum /root/payload.txt > /root/payload.sum", "sync"],
            },
        ],
    }


def test_packer_builds_an_image_that_has_the_provisioned_files(tools: Tools) -> None:
    t = tools
    payload = t.work / "payload.txt"
    payload.write_text("".join(f"line {i} of the file provisioner's upload\n" for i in range(500)))
    template = t.work / "kiln.json"
    template.write_text(json.dumps(_packer_template(t, payload), indent=2))
    res = subprocess.run(
        ["packer", "build", "-machine-readable", str(template)],
        capture_output=True, text=True, cwd=t.work, env=t.env(), timeout=1800,
    )  # fmt: skip
    log = (t.work / "packer.log").read_text(errors="replace") if res.returncode else ""
    assert res.returncode == 0, f"{res.stdout[-6000:]}\n--- packer.log ---\n{log[-6000:]}"
    artifacts = [
        line.split(",")[-1] for line in res.stdout.splitlines() if ",artifact,0,id," in line
    ]
    assert artifacts, res.stdout[-3000:]
    made = dict(
        pair.split(":") for pair in artifacts[0].replace("%!(PACKER_COMMA)", ",").split(",")
    )
    assert set(made) == {REGION, OTHER}

    ec2 = t.ec2()
    image = ec2.describe_images(ImageIds=[made[REGION]])["Images"][0]
    assert image["State"] == "available"
    assert image["Description"] == "made by packer against kiln"
    tags = {x["Key"]: x["Value"] for x in image.get("Tags", [])}
    assert tags == {"Builder": "packer", "Base": t.micro}
    snap_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    # Packer tags the snapshots with the image's tags, then its snapshot_tags over them.
    assert {x["Key"]: x["Value"] for x in snap.get("Tags", [])} == {
        "Builder": "packer",
        "Base": t.micro,
    }
    perms = ec2.describe_image_attribute(ImageId=made[REGION], Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [{"UserId": t.grantee.account_id}]
    there = t.ec2(region=OTHER).describe_images(ImageIds=[made[OTHER]])["Images"][0]
    assert there["State"] == "available" and there["Name"] == image["Name"]
    # Packer cleaned up after itself: no builder instance, key pair or temporary group left.
    live = [
        i
        for r in ec2.describe_instances(
            Filters=[{"Name": "tag:Name", "Values": ["packer-builder"]}]
        )["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    assert live == []
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == []

    # The grantee launches the image; the provisioned files are in it.
    grantee = t.ec2(t.grantee)
    key = grantee.create_key_pair(KeyName="check", KeyType="ed25519")
    key_file = t.work / "check.pem"
    key_file.write_text(key["KeyMaterial"])
    key_file.chmod(0o600)
    open_ssh(grantee)
    inst = grantee.run_instances(
        ImageId=made[REGION], MinCount=1, MaxCount=1, InstanceType="t3.nano", KeyName="check"
    )["Instances"][0]
    iid = inst["InstanceId"]
    try:
        _until(
            f"{iid} ready",
            lambda: (
                f"KILN-READY instance-id={iid}"
                in (grantee.get_console_output(InstanceId=iid).get("Output") or "")
            ),
        )
        inst = grantee.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        out = t.ssh(inst, key_file, "cat /root/from-shell /root/payload.sum")
        assert out.splitlines()[0] == "provisioned-by-shell"
        assert out.splitlines()[1].split()[0] == hashlib.sha256(payload.read_bytes()).hexdigest()
    finally:
        grantee.terminate_instances(InstanceIds=[iid])


ANSIBLE_PLAYBOOK = """\
- name: An instance in the default VPC, managed over SSH, imaged, image removed
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/amazon.aws.aws:
      endpoint_url: "{endpoint}"
      region: "{region}"
  tasks:
    - name: a key pair
      amazon.aws.ec2_key:
        name: ansible-key
        key_type: ed25519
      register: key

    - name: the private key on disk
      ansible.builtin.copy:
        content: "{{{{ key.key.private_key }}}}"
        dest: "{work}/ansible-key.pem"
        mode: "0600"

    - name: ssh into the default group
      amazon.aws.ec2_security_group:
        name: default
        description: default VPC security group
        purge_rules: false
        rules:
          - proto: tcp
            ports: [22]
            cidr_ip: 0.0.0.0/0

    - name: launch
      amazon.aws.ec2_instance:
        name: ansible-managed
        image_id: "{image}"
        instance_type: t3.nano
        key_name: ansible-key
        wait: true
        state: running
      register: launched

    - name: the new host
      ansible.builtin.add_host:
        name: managed
        ansible_host: "{{{{ launched.instances[0].public_ip_address }}}}"
        ansible_user: root
        ansible_ssh_private_key_file: "{work}/ansible-key.pem"
        ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        instance_id: "{{{{ launched.instances[0].instance_id }}}}"

    - name: wait for SSH
      ansible.builtin.wait_for:
        host: "{{{{ launched.instances[0].public_ip_address }}}}"
        port: 22
        search_regex: SSH
        timeout: 600

- name: Manage it
  hosts: managed
  gather_facts: false
  tasks:
    - name: a file
      ansible.builtin.raw: "mkdir -p /etc/kiln-demo && echo managed-by-ansible > /etc/kiln-demo/motd && sync"
    - name: read it back
      ansible.builtin.raw: cat /etc/kiln-demo/motd
      register: motd
    - ansible.builtin.assert:
        that: "'managed-by-ansible' in motd.stdout"

- name: Image it, then remove the image and its snapshot
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/amazon.aws.aws:
      endpoint_url: "{endpoint}"
      region: "{region}"
  tasks:
    - name: make an image
      amazon.aws.ec2_ami:
        instance_id: "{{{{ hostvars['managed'].instance_id }}}}"
        name: ansible-made
        wait: true
        wait_timeout: 900
      register: ami

    - name: record it
      ansible.builtin.copy:
        content: "{{{{ ami | to_json }}}}"
        dest: "{work}/ami.json"

    - name: terminate the instance
      amazon.aws.ec2_instance:
        instance_ids: ["{{{{ hostvars['managed'].instance_id }}}}"]
        state: absent
        wait: true

    - name: remove image and snapshot
      amazon.aws.ec2_ami:
        image_id: "{{{{ ami.image_id }}}}"
        state: absent
        delete_snapshot: true
"""


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible not installed")
def test_ansible_launches_manages_images_and_removes(tools: Tools) -> None:
    t = tools
    playbook = t.work / "playbook.yml"
    playbook.write_text(
        ANSIBLE_PLAYBOOK.format(endpoint=t.kiln.url, region=REGION, image=t.micro, work=t.work)
    )
    env = t.env()
    res = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)],
        capture_output=True, text=True, cwd=t.work, env=env, timeout=1800,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-8000:] + res.stderr[-3000:]
    ami = json.loads((t.work / "ami.json").read_text())
    image_id = ami["image_id"]
    snap_id = ami["block_device_mapping"]
    ec2 = t.ec2()
    # ec2_ami state=absent deregistered the image and deleted its snapshot
    got = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert [i["State"] for i in got] == ["deregistered"]
    snaps = [m["snapshot_id"] for m in (snap_id.values() if isinstance(snap_id, dict) else [])]
    assert snaps
    left = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert not {s["SnapshotId"] for s in left} & set(snaps)
    instances = [
        i
        for r in ec2.describe_instances(
            Filters=[{"Name": "tag:Name", "Values": ["ansible-managed"]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    assert [i["State"]["Name"] for i in instances] == ["terminated"]
