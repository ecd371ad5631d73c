"""The checks a scan runs, one table (:data:`CHECKS`): an id, what it looks for, its severity,
and the CIS Debian Linux 12 Benchmark section or the AWS Marketplace AMI requirement it stands
for (docs/scan.md#checks lists the same table). Each check reads the image through a
:class:`~kiln.scan.context.ScanContext` and returns :class:`Hit` s; the scanner makes them
findings."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from kiln.scan import services_check, sysctl_check
from kiln.scan.context import Hit, ScanContext
from kiln.scan.context import listed as _listed
from kiln.scan.secrets_check import (
    authorized_keys,
    aws_credentials,
    private_keys,
    shell_history,
    ssh_host_keys,
)
from kiln.scan.ssh_check import sshd_settings

SEVERITIES = ("critical", "high", "medium", "low", "informational")


@dataclass(frozen=True, slots=True)
class Check:
    check_id: str
    summary: str
    severity: str
    cis: str | None  # CIS Debian Linux 12 Benchmark section (v1.1.0 numbering)
    marketplace: str | None  # AWS Marketplace AMI-based product requirement
    run: Callable[[ScanContext], list[Hit]]


def _sshd(
    setting: str, bad: Callable[[str], bool], what: str
) -> Callable[[ScanContext], list[Hit]]:
    def run(ctx: ScanContext) -> list[Hit]:
        found = sshd_settings(ctx)
        if found is None:
            return []  # no OpenSSH server in the image
        value, where = found.get(setting.lower(), (found.default(setting), "(default)"))
        if bad(value.lower()):
            return [
                Hit(
                    f"sshd {setting} is {value}: {what}",
                    (where.split(":")[0],) if where.startswith("/") else (),
                )
            ]
        return []

    return run


def _root_password(ctx: ScanContext) -> list[Hit]:
    hits = []
    for s in ctx.shadow:
        if s.name != "root":
            continue
        if s.password == "":
            hits.append(
                Hit("root has an empty password: anyone can log in as root", ("/etc/shadow",))
            )
        elif not s.password.startswith(("!", "*")):
            hits.append(
                Hit("root has a password set: password login as root is enabled", ("/etc/shadow",))
            )
    return hits


def _empty_passwords(ctx: ScanContext) -> list[Hit]:
    names = [s.name for s in ctx.shadow if s.password == "" and s.name != "root"]
    if not names:
        return []
    return [Hit(f"accounts with an empty password: {', '.join(names)}", ("/etc/shadow",))]


def _duplicate_uids(ctx: ScanContext) -> list[Hit]:
    by_uid: dict[int, list[str]] = {}
    for p in ctx.passwd:
        by_uid.setdefault(p.uid, []).append(p.name)
    return [
        Hit(f"uid {uid} is shared by {', '.join(names)}", ("/etc/passwd",))
        for uid, names in sorted(by_uid.items())
        if len(names) > 1
    ]


#: (path, most permissive mode, group names allowed besides root) for the account files.
ACCOUNT_FILES = (
    ("/etc/passwd", 0o644),
    ("/etc/group", 0o644),
    ("/etc/shadow", 0o640),
    ("/etc/gshadow", 0o640),
)


def _account_file_modes(ctx: ScanContext) -> list[Hit]:
    hits = []
    for path, most in ACCOUNT_FILES:
        info = ctx.info(path)
        if info is None:
            continue
        mode = stat.S_IMODE(info.mode)
        if mode & ~most or info.uid != 0:
            hits.append(
                Hit(
                    f"{path} is mode {mode:04o} owner uid {info.uid} (want {most:04o} or "
                    "stricter, owned by root)",
                    (path,),
                )
            )
    return hits


def _world_writable(ctx: ScanContext) -> list[Hit]:
    paths = []
    for e in ctx.entries:
        if e.kind == "symlink":
            continue
        info = ctx.inodes.get(e.inode)
        if info is None or not info.mode & stat.S_IWOTH:
            continue
        if e.kind == "dir" and info.mode & stat.S_ISVTX:
            continue  # /tmp and the like: world-writable with the sticky bit is the norm
        if e.kind in ("chardev", "blockdev", "socket", "fifo"):
            continue  # /dev/null, /dev/log...
        paths.append(e.path)
    return _listed(sorted(paths), "world-writable file or directory (without the sticky bit)")


def _suid(ctx: ScanContext) -> list[Hit]:
    paths = []
    for e in ctx.entries:
        if e.kind != "file":
            continue
        info = ctx.inodes.get(e.inode)
        if info is not None and info.mode & (stat.S_ISUID | stat.S_ISGID):
            paths.append(e.path)
    return _listed(sorted(paths), "SUID/SGID program")


#: End of security support (LTS included) by (os-release ID, major VERSION_ID).
EOL = {
    ("debian", "7"): date(2018, 5, 31),
    ("debian", "8"): date(2020, 6, 30),
    ("debian", "9"): date(2022, 6, 30),
    ("debian", "10"): date(2024, 6, 30),
    ("debian", "11"): date(2026, 8, 31),
    ("debian", "12"): date(2028, 6, 30),
    ("debian", "13"): date(2030, 6, 30),
    ("ubuntu", "16.04"): date(2021, 4, 30),
    ("ubuntu", "18.04"): date(2023, 5, 31),
    ("ubuntu", "20.04"): date(2025, 5, 31),
    ("ubuntu", "22.04"): date(2027, 6, 1),
    ("ubuntu", "24.04"): date(2029, 5, 31),
}


def os_release(ctx: ScanContext) -> tuple[str, str, str] | None:
    """(ID, VERSION_ID, PRETTY_NAME) from /etc/os-release, else from /etc/debian_version."""
    text = ctx.text("/etc/os-release") or ctx.text("/usr/lib/os-release")
    if text:
        values = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip("\"'")
        os_id = values.get("ID", "")
        return os_id, values.get("VERSION_ID", ""), values.get("PRETTY_NAME", os_id)
    deb = (ctx.text("/etc/debian_version") or "").strip()
    if deb:
        return "debian", deb.split(".")[0], f"Debian {deb}"
    return None


def _eol(today: date) -> Callable[[ScanContext], list[Hit]]:
    def run(ctx: ScanContext) -> list[Hit]:
        found = os_release(ctx)
        if found is None:
            return []
        os_id, version, pretty = found
        major = version if os_id == "ubuntu" else version.split(".")[0]
        end = EOL.get((os_id, major))
        if end is not None and end < today:
            return [
                Hit(f"{pretty} reached its end of life on {end.isoformat()}", ("/etc/os-release",))
            ]
        return []

    return run


_YES = re.compile(r"^(yes|true|1)$")


def checks(today: date) -> tuple[Check, ...]:
    """The table, with the end-of-life check judged on ``today``."""
    return (
        Check(
            "ssh.permit-root-login",
            "sshd allows root to log in",
            "high",
            "5.1.20",
            "root login disabled",
            _sshd("PermitRootLogin", lambda v: v == "yes", "root may log in over SSH"),
        ),
        Check(
            "ssh.password-authentication",
            "sshd accepts passwords",
            "medium",
            None,
            "password authentication disabled",
            _sshd(
                "PasswordAuthentication",
                lambda v: _YES.match(v) is not None,
                "passwords are accepted over SSH",
            ),
        ),
        Check(
            "ssh.permit-empty-passwords",
            "sshd accepts empty passwords",
            "high",
            "5.1.19",
            "password authentication disabled",
            _sshd(
                "PermitEmptyPasswords",
                lambda v: _YES.match(v) is not None,
                "accounts with no password may log in",
            ),
        ),
        Check(
            "accounts.root-password",
            "root has an empty or a usable password",
            "critical",
            "7.2.2",
            "no default or hard-coded passwords",
            _root_password,
        ),
        Check(
            "accounts.empty-password",
            "accounts with an empty password",
            "high",
            "7.2.2",
            "no default or hard-coded passwords",
            _empty_passwords,
        ),
        Check(
            "accounts.duplicate-uid",
            "two accounts share a uid",
            "high",
            "7.2.5",
            None,
            _duplicate_uids,
        ),
        Check(
            "files.account-file-modes",
            "passwd, group, shadow, gshadow too permissive",
            "medium",
            "7.1.1-7.1.8",
            None,
            _account_file_modes,
        ),
        Check(
            "files.world-writable",
            "world-writable files",
            "medium",
            "7.1.11",
            None,
            _world_writable,
        ),
        Check(
            "files.suid-inventory", "SUID and SGID programs", "informational", "7.1.13", None, _suid
        ),
        Check(
            "services.enabled",
            "services started at boot",
            "informational",
            "2.1",
            None,
            services_check.inventory,
        ),
        Check(
            "services.insecure",
            "insecure legacy services enabled",
            "medium",
            "2.1",
            "no unnecessary services",
            services_check.insecure,
        ),
        Check(
            "sysctl.network",
            "network and kernel sysctls",
            "low",
            "3.3, 1.5",
            None,
            sysctl_check.run,
        ),
        Check(
            "firewall.present",
            "no host firewall configured",
            "medium",
            "4.1",
            None,
            services_check.firewall,
        ),
        Check(
            "secrets.private-key",
            "private keys left in the image",
            "critical",
            None,
            "no private keys or credentials",
            private_keys,
        ),
        Check(
            "secrets.cloud-credentials",
            "cloud credentials left in the image",
            "critical",
            None,
            "no private keys or credentials",
            aws_credentials,
        ),
        Check(
            "secrets.authorized-keys",
            "SSH authorized_keys left in the image",
            "high",
            None,
            "no authorized keys or passwords",
            authorized_keys,
        ),
        Check(
            "secrets.shell-history",
            "shell history left in the image",
            "medium",
            None,
            "no shell history or logs",
            shell_history,
        ),
        Check(
            "secrets.ssh-host-keys",
            "SSH host keys left in the image",
            "medium",
            None,
            "instance-unique host keys",
            ssh_host_keys,
        ),
        Check(
            "os.end-of-life",
            "the OS release is past its end of life",
            "high",
            None,
            "supported operating system",
            _eol(today),
        ),
    )
