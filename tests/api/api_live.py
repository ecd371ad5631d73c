"""A real `kiln serve` subprocess on a free port, driven with unmodified boto3 and the AWS CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

KILN = [sys.executable, "-m", "kiln"]
AWS = str(Path(sys.executable).parent / "aws")
REGIONS = ("us-east-1", "eu-west-1")


def ssh_address(inst: dict[str, object]) -> tuple[str, int]:
    """Where a running instance's SSH answers: ``PublicIpAddress:22`` on a VPC network, or the
    ``127.0.0.1:PORT`` of QEMU user networking (``kiln serve --network user``)."""
    dns = str(inst.get("PublicDnsName") or "")
    if ":" in dns:
        host, port = dns.rsplit(":", 1)
        return host, int(port)
    return str(inst["PublicIpAddress"]), 22


def open_ssh(ec2: object, group_id: str | None = None) -> None:
    """Allow tcp/22 from anywhere into ``group_id`` (default: the default VPC's default group),
    as one does on EC2 before SSH works."""
    if group_id is None:
        groups = ec2.describe_security_groups(  # type: ignore[attr-defined]
            Filters=[{"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"]
        vpcs = {
            v["VpcId"]
            for v in ec2.describe_vpcs(  # type: ignore[attr-defined]
                Filters=[{"Name": "is-default", "Values": ["true"]}]
            )["Vpcs"]
        }
        group_id = next(g["GroupId"] for g in groups if g["VpcId"] in vpcs)
    try:
        ec2.authorize_security_group_ingress(  # type: ignore[attr-defined]
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
    except Exception as e:  # already open
        if "InvalidPermission.Duplicate" not in str(e):
            raise


@dataclass(frozen=True, slots=True)
class Creds:
    account_id: str
    access_key_id: str
    secret_access_key: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: What the shared test servers open to imports: the temp directory the tests' disks are made
#: in, and loopback for their http servers (tests/api/test_api_security.py checks the defaults).
TEST_IMPORT_ARGS = ("--import-dir", tempfile.gettempdir(), "--import-allow-net", "127.0.0.0/8")


@dataclass
class LiveKiln:
    data_dir: Path
    database_url: str | None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    serve_args: tuple[str, ...] = TEST_IMPORT_ARGS

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _db_args(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else []

    def start(self) -> None:
        log = open(self.data_dir / "serve.log", "ab")  # noqa: SIM115  # closed with the process
        self.proc = subprocess.Popen(
            [
                *KILN,
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                *self._db_args(),
                *self.serve_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kiln serve exited {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"kiln serve did not come up: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def release_networks(self) -> None:
        """Remove the VPC namespaces the server made (after it stopped and its VMs are gone):
        what ``kiln serve`` keeps across restarts on purpose, a test's data dir does not."""
        if os.geteuid() != 0:
            return
        from kiln.compute.network.host import NetnsNetworkHost
        from kiln.runtime.layout import netns_prefix, network_dir

        host = NetnsNetworkHost(
            network_dir(self.data_dir), lambda _vpc, _ip: None, netns_prefix(self.data_dir)
        )
        host.reconcile([], [])
        host.close()

    def kill_vms(self) -> None:
        """SIGKILL every QEMU still running on this server's data dir (a test's teardown, after
        the server stopped)."""
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and str(self.data_dir).encode() in (p / "cmdline").read_bytes():
                    os.kill(int(p.name), signal.SIGKILL)
            except OSError:
                continue

    def log(self) -> str:
        path = self.data_dir / "serve.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kiln(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``kiln ARGS`` (``timeout``: a guard against hanging, not a speed requirement)."""
        return subprocess.run([*KILN, *args], capture_output=True, text=True, timeout=timeout)

    def account(self, name: str, *extra: str) -> Creds:
        res = self.kiln(
            "account",
            "create",
            "--name",
            name,
            "--data-dir",
            str(self.data_dir),
            *self._db_args(),
            *extra,
        )
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        return Creds(doc["AccountId"], doc["AccessKeyId"], doc["SecretAccessKey"])

    def client(
        self,
        creds: Creds,
        region: str = REGIONS[0],  # type: ignore[no-untyped-def]
        service: str = "ec2",
    ):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )

    def snapshot(self, creds: Creds, disk: Path, region: str = REGIONS[0]) -> str:
        """Import ``disk`` into the region's store (`kiln snapshot import`) and record it in
        the catalog as the account's completed snapshot."""
        res = self.kiln(
            "snapshot",
            "import",
            str(disk),
            "--region",
            region,
            "--data-dir",
            str(self.data_dir),
            "--account",
            creds.account_id,
            "--json",
            *self._db_args(),
        )
        assert res.returncode == 0, res.stderr
        imported = json.loads(res.stdout)
        from kiln.catalog import open_catalog
        from kiln.catalog import snapshots as cat_snapshots
        from kiln.services.snapshots.records import record_snapshot

        url = self.database_url or f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"
        catalog = open_catalog(url, self.data_dir / "catalog.key")
        try:
            with catalog.read() as tx:
                known = cat_snapshots.get_snapshot(tx, imported["snapshot_id"], creds.account_id)
            if known is None:  # older `snapshot import` does not record in the catalog
                record_snapshot(
                    catalog,
                    region,
                    creds.account_id,
                    imported["snapshot_id"],
                    imported["virtual_size"],
                )
        finally:
            catalog.close()
        return str(imported["snapshot_id"])

    def aws(
        self, creds: Creds, *args: str, region: str = REGIONS[0], service: str = "ec2"
    ) -> subprocess.CompletedProcess[str]:
        """The AWS CLI's ``aws <service> ARGS`` against this server (``ec2``, ``sts``, ``kms``)."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.data_dir),
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_MAX_ATTEMPTS": "1",
        }
        return subprocess.run(
            [AWS, service, *args, "--endpoint-url", self.url, "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )


@dataclass(frozen=True, slots=True)
class ApiWorld:
    """The session's live server, its three accounts and a small disk image."""

    kiln: LiveKiln
    owner: Creds
    grantee: Creds
    stranger: Creds
    disk: Path


def make_disk(path: Path, size: int = 8 * 1024 * 1024, seed: bytes = b"kiln") -> Path:
    """A small sparse raw disk with a few distinct non-zero blocks."""
    with open(path, "wb") as f:
        f.truncate(size)
        for n in range(4):
            f.seek(n * 1024 * 1024)
            f.write((seed + bytes([n])) * 1024)
    return path
