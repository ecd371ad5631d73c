"""kiln/scan on purpose-made disks (mkfs.ext4 -d, sfdisk): partition tables (MBR, GPT, none),
reads through a real store's SnapshotReader, what each check reads, unreadable filesystems."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest
from scan_disks import CLEAN, MIB, PLANTED, make_ext4_disk, make_unreadable_disk

from kiln.disks import raw_disk
from kiln.scan.partitions import read_partitions
from kiln.scan.policy import Policy, PolicyError, builtin_policy, parse_policy
from kiln.scan.scanner import scan_disk
from kiln.scan.source import FileDisk
from kiln.store import open_store

ALL = builtin_policy("all")


def _scan(disk: Path, policy: Policy = ALL, today: date | None = None):  # type: ignore[no-untyped-def]
    d = FileDisk(disk)
    try:
        return scan_disk(d, policy, today)
    finally:
        d.close()


def _ids(result) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for f in result.findings:
        out.setdefault(f.check_id, []).extend(f.paths)
    return out


def test_scan_through_the_store_reads_only_what_the_checks_need(tmp_path: Path) -> None:
    disk = make_ext4_disk(tmp_path / "planted.raw", {**CLEAN, **PLANTED}, size_mib=64)
    store = open_store((tmp_path / "store").as_uri())
    store.import_disk(raw_disk(disk), "snap-00000000000000001")
    reader = store.reader("snap-00000000000000001")
    result = scan_disk(reader, ALL)
    assert result.status == "scanned" and result.partition == 1
    assert _ids(result) == _ids(_scan(disk))  # the same findings as over the raw file
    assert 0 < result.bytes_read < 2 * MIB  # of a 64 MiB disk
    assert reader.chunks_read < len(reader.manifest.offsets)


def test_gpt_and_unpartitioned_disks(tmp_path: Path) -> None:
    mbr = make_ext4_disk(tmp_path / "mbr.raw", {**CLEAN, **PLANTED})
    gpt = tmp_path / "gpt.raw"
    gpt.write_bytes(mbr.read_bytes())
    subprocess.run(
        ["sfdisk", "-q", "--label", "gpt", str(gpt)],
        input=b"2048,40000,L\n",
        check=True,
        capture_output=True,
    )
    parts = read_partitions(FileDisk(gpt))
    assert [(p.number, p.start, p.scheme) for p in parts] == [(1, MIB, "gpt")]
    assert "secrets.private-key" in _ids(_scan(gpt))

    bare = tmp_path / "bare.raw"  # the filesystem alone, from byte 0
    with open(mbr, "rb") as f:
        f.seek(MIB)
        bare.write_bytes(f.read())
    assert read_partitions(FileDisk(bare))[0].scheme == "none"
    assert "secrets.private-key" in _ids(_scan(bare))


def test_planted_problems_are_found_and_the_clean_image_has_none(tmp_path: Path) -> None:
    planted = _ids(_scan(make_ext4_disk(tmp_path / "p.raw", {**CLEAN, **PLANTED})))
    assert planted["ssh.permit-root-login"] == ["/etc/ssh/sshd_config.d/50-root.conf"]
    assert planted["accounts.root-password"] == ["/etc/shadow"]
    assert planted["files.world-writable"] == ["/srv/data/shared.txt"]  # not /tmp (sticky)
    assert planted["files.suid-inventory"] == ["/usr/local/bin/rootme"]
    assert planted["secrets.private-key"] == ["/root/.ssh/id_ed25519"]
    clean = _ids(_scan(make_ext4_disk(tmp_path / "c.raw", CLEAN)))
    assert not set(clean) & {
        "ssh.permit-root-login",
        "ssh.password-authentication",
        "accounts.root-password",
        "files.world-writable",
        "files.suid-inventory",
        "secrets.private-key",
    }


def test_secrets_accounts_services_sysctls_and_eol(tmp_path: Path) -> None:
    files = {
        **CLEAN,
        "etc/os-release": ('ID=debian\nVERSION_ID="10"\nPRETTY_NAME="Debian 10"\n', 0o644),
        "etc/passwd": (
            "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"
            "admin:x:1000:1000::/home/admin:/bin/sh\n",
            0o644,
        ),
        "etc/shadow": ("root:$6$salt$hash:19000::::::\nadmin::19000::::::\n", 0o644),
        "root/.aws/credentials": ("[default]\naws_secret_access_key = abc\n", 0o600),
        "home/admin/.ssh/authorized_keys": ("ssh-ed25519 AAAA admin\n", 0o600),
        "root/.bash_history": ("ls\n", 0o600),
        "etc/ssh/ssh_host_ed25519_key": ("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600),
        "etc/systemd/system/multi-user.target.wants/telnet.service": ("[Unit]\n", 0o644),
        "etc/sysctl.d/10-net.conf": ("net.ipv4.ip_forward = 1\n", 0o644),
        "etc/sysctl.conf": ("net.ipv4.conf.all.log_martians=1\n", 0o644),
    }
    found = _scan(make_ext4_disk(tmp_path / "s.raw", files), today=date(2026, 12, 4))
    ids = _ids(found)
    titles = {f.check_id: f.title for f in found.findings if f.check_id != "sysctl.network"}
    assert ids["secrets.cloud-credentials"] == ["/root/.aws/credentials"]
    assert ids["secrets.authorized-keys"] == ["/home/admin/.ssh/authorized_keys"]
    assert ids["secrets.shell-history"] == ["/root/.bash_history"]
    assert ids["secrets.ssh-host-keys"] == ["/etc/ssh/ssh_host_ed25519_key"]
    assert "secrets.private-key" not in ids  # a host key is its own finding
    assert "password login as root" in titles["accounts.root-password"]
    assert "admin" in titles["accounts.empty-password"]
    assert "root, toor" in titles["accounts.duplicate-uid"]
    assert ids["files.account-file-modes"] == ["/etc/shadow"]  # 0644
    assert ids["services.insecure"][0].endswith("telnet.service")
    assert "2024-06-30" in titles["os.end-of-life"]
    sysctls = [f.title for f in found.findings if f.check_id == "sysctl.network"]
    assert any("ip_forward = 1 (set in /etc/sysctl.d/10-net.conf)" in t for t in sysctls)
    assert not any("log_martians" in t for t in sysctls)  # set as wanted in sysctl.conf


def test_unreadable_filesystem_is_unscanned(tmp_path: Path) -> None:
    result = _scan(make_unreadable_disk(tmp_path / "junk.raw"))
    assert result.status == "unscanned" and result.findings == ()
    assert result.reason is not None and "partition 1" in result.reason
    corrupt = make_ext4_disk(tmp_path / "corrupt.raw", CLEAN)
    with open(corrupt, "r+b") as f:  # the group descriptors, after the superblock
        f.seek(MIB + 2048)
        f.write(b"\xff" * 1024)
    assert _scan(corrupt).status == "unscanned"


def test_policies_select_checks_and_refuse_bad_files(tmp_path: Path) -> None:
    disk = make_ext4_disk(tmp_path / "p.raw", {**CLEAN, **PLANTED})
    table = __import__("kiln.scan.checks", fromlist=["checks"]).checks(date.today())
    cis = _ids(_scan(disk, builtin_policy("cis")))
    assert "secrets.private-key" not in cis and "files.world-writable" in cis
    market = _ids(_scan(disk, builtin_policy("marketplace")))
    assert "secrets.private-key" in market and "files.world-writable" not in market
    own = parse_policy(
        '{"checks": ["files.world-writable"], "severities": {"files.world-writable": "critical"}}',
        "p.json",
        table,
    )
    result = _scan(disk, own)
    assert [(f.check_id, f.severity) for f in result.findings] == [
        ("files.world-writable", "critical")
    ]
    for bad, field in (
        ("[]", "JSON object"),
        ('{"check": []}', "'check'"),
        ('{"severities": {"files.world-writable": "urgent"}}', "urgent"),
        ("{", "not JSON"),
    ):
        with pytest.raises(PolicyError) as e:
            parse_policy(bad, "p.json", table)
        assert "p.json" in str(e.value) and field in str(e.value)


def test_the_fast_walk_lists_what_the_library_lists(tmp_path: Path) -> None:
    """walk() parses directory blocks through their extents; the ext4 library's own listing of
    every directory must agree, entry for entry (an htree directory included)."""
    from kiln.scan.fs import Ext4Image
    from kiln.scan.source import PartitionStream

    files = {**CLEAN, **PLANTED}
    files.update({f"usr/share/many/file-{i:04d}-{'x' * 40}": ("x\n", 0o644) for i in range(600)})
    disk = FileDisk(make_ext4_disk(tmp_path / "big.raw", files, size_mib=48, htree=True))
    fs = Ext4Image(PartitionStream(disk, MIB, 47 * MIB))
    many = fs.lookup("/usr/share/many")
    assert many is not None
    fs.inode_table()
    assert fs._dir_extents[many[0]][0] & 0x1000  # EXT4_INDEX_FL: an htree directory
    walked = {e.path: (e.inode, e.kind) for e in fs.walk("/")}
    assert "/usr/share/many/file-0599-" + "x" * 40 in walked
    listed: dict[str, tuple[int, str]] = {}
    dirs = ["/"]
    while dirs:
        d = dirs.pop()
        for e in fs.listdir(d):  # the library's Directory.opendir()
            listed[e.path] = (e.inode, e.kind)
            if e.kind == "dir":
                dirs.append(e.path)
    assert walked == listed
    disk.close()
