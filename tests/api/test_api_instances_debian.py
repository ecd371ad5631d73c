"""The Debian image (`kiln bake debian`: mmdebstrap from a Debian mirror, cloud-init, OpenSSH)
boots through the EC2 API, takes the key pair for `admin` and runs user data.

Slow (the bake downloads Debian packages, the boot runs systemd and cloud-init under TCG) and
needs the network to a Debian mirror: set KILN_TEST_DEBIAN=0 to skip it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from pathlib import Path

import paramiko
import pytest
from api_live import LiveKiln, open_ssh, ssh_address

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("KILN_TEST_DEBIAN", "1") == "0", reason="KILN_TEST_DEBIAN=0"),
    pytest.mark.skipif(
        shutil.which("mmdebstrap") is None, reason="mmdebstrap missing (scripts/install)"
    ),
]

REGION = "us-east-1"
WAIT = 900.0  # a guard against hanging forever, not a speed requirement


def _until(what: str, probe, timeout: float = WAIT):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (got := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return got


def test_debian_boots_with_cloud_init_key_and_user_data(tmp_path: Path) -> None:
    saved = os.environ.get("KILN_ACCEL")
    os.environ["KILN_ACCEL"] = "tcg"
    kiln = LiveKiln(tmp_path, None)
    try:
        baked = kiln.kiln(
            "bake",
            "debian",
            "--data-dir",
            str(tmp_path),
            "--region",
            REGION,
            "--json",
            timeout=WAIT,
        )
        assert baked.returncode == 0, baked.stderr
        image_id = json.loads(baked.stdout)[0]["ImageId"]
        kiln.start()
        ec2 = kiln.client(kiln.account("owner"))
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        assert image["Name"].startswith("kiln/debian/") and image["Public"] is True
        key = ec2.create_key_pair(KeyName="deb", KeyType="ed25519")["KeyMaterial"]
        key_file = tmp_path / "deb.pem"
        key_file.write_text(key)
        open_ssh(ec2)
        token = secrets.token_hex(8)
        iid = ec2.run_instances(
            ImageId=image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            KeyName="deb",
            UserData=f"#!/bin/sh\necho {token} > /root/from-user-data.txt\n",
        )["Instances"][0]["InstanceId"]
        _until(
            "KILN-READY",
            lambda: (
                f"KILN-READY instance-id={iid}"
                in (ec2.get_console_output(InstanceId=iid).get("Output") or "")
            ),
        )
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        host, port = ssh_address(inst)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            host,
            port=port,
            username="admin",
            look_for_keys=False,
            allow_agent=False,
            timeout=120,
            banner_timeout=120,
            pkey=paramiko.Ed25519Key.from_private_key_file(str(key_file)),
        )
        try:
            _, out, _ = client.exec_command(
                "sudo cat /root/from-user-data.txt; hostname; . /etc/os-release; echo $VERSION_ID;"
                " cloud-id; python3 -c 'import sys; print(sys.version_info[0])'",
                timeout=120,
            )
            got = out.read().decode().split()
        finally:
            client.close()
        if inst.get("PublicDnsName"):  # QEMU user networking: the NoCloud seed
            assert got == [token, iid, "12", "nocloud", "3"], got
        else:  # a VPC: cloud-init's Ec2 datasource read the key and user data from IMDS
            short = inst["PrivateDnsName"].split(".")[0]
            assert got == [token, short, "12", "aws", "3"], got
        ec2.terminate_instances(InstanceIds=[iid])
        _until(
            "terminated",
            lambda: (
                ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
                    "State"
                ]["Name"]
                == "terminated"
            ),
        )
    finally:
        kiln.stop()
        for p in Path("/proc").iterdir():  # never leave a VM behind
            try:
                if p.name.isdigit() and str(tmp_path).encode() in (p / "cmdline").read_bytes():
                    os.kill(int(p.name), signal.SIGKILL)
            except OSError:
                pass
        kiln.release_networks()
        if saved is None:
            os.environ.pop("KILN_ACCEL", None)
        else:
            os.environ["KILN_ACCEL"] = saved
