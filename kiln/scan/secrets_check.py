"""Secrets left in an image: private keys, cloud credentials, authorized_keys, shell history,
SSH host keys. Only the places they are left in are read (docs/scan.md#secrets): the homes,
/etc, /opt, /srv, /usr/local and the temporary directories, files up to KEY_FILE_MAX bytes."""

from __future__ import annotations

import re

from kiln.scan.context import Hit, ScanContext, listed

KEY_ROOTS = (
    "/etc",
    "/root",
    "/home",
    "/opt",
    "/srv",
    "/usr/local",
    "/tmp",
    "/var/tmp",
    "/var/backups",
)
KEY_FILE_MAX = 256 * 1024
PRIVATE_KEY = re.compile(
    rb"-----BEGIN ((RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY( BLOCK)?-----"
)
HOST_KEY = re.compile(
    r"^/etc/ssh/ssh_host_[a-z0-9]+_key$|^/etc/dropbear/dropbear_[a-z0-9]+_host_key$"
)
HISTORY_FILES = (
    ".bash_history",
    ".ash_history",
    ".sh_history",
    ".zsh_history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".lesshst",
    ".viminfo",
)
AWS_SECRET = re.compile(rb"aws_secret_access_key\s*=\s*\S+", re.IGNORECASE)


def _candidates(ctx: ScanContext) -> list[tuple[str, int]]:
    """(path, inode) of the regular files under KEY_ROOTS small enough to read."""
    out = []
    for e in ctx.entries_under(KEY_ROOTS):
        if e.kind == "file":
            info = ctx.inodes.get(e.inode)
            if info is not None and 0 < info.size <= KEY_FILE_MAX:
                out.append((e.path, e.inode))
    return out


def private_keys(ctx: ScanContext) -> list[Hit]:
    paths = [
        path
        for path, ino in _candidates(ctx)
        if not HOST_KEY.match(path) and PRIVATE_KEY.search(ctx.fs.read_inode(ino, KEY_FILE_MAX))
    ]
    return listed(paths, "private key file")


def aws_credentials(ctx: ScanContext) -> list[Hit]:
    paths = []
    for home in ctx.homes:
        for name in (".aws/credentials", ".aws/config", ".s3cfg", ".boto"):
            data = ctx.fs.read_file(f"{home}/{name}", KEY_FILE_MAX)
            if data is not None and (AWS_SECRET.search(data) or b"secret_key" in data):
                paths.append(f"{home}/{name}")
    return listed(paths, "cloud credentials file")


def authorized_keys(ctx: ScanContext) -> list[Hit]:
    paths = []
    for home in ctx.homes:
        for name in (".ssh/authorized_keys", ".ssh/authorized_keys2"):
            data = ctx.fs.read_file(f"{home}/{name}", KEY_FILE_MAX)
            if data is not None and any(
                line.strip() and not line.strip().startswith(b"#") for line in data.splitlines()
            ):
                paths.append(f"{home}/{name}")
    return listed(paths, "authorized_keys file")


def shell_history(ctx: ScanContext) -> list[Hit]:
    paths = []
    for home in ctx.homes:
        for name in HISTORY_FILES:
            path = f"{home}/{name}"
            info = ctx.info(path)
            if info is not None and info.size > 0:
                paths.append(path)
    return listed(paths, "shell history file")


def ssh_host_keys(ctx: ScanContext) -> list[Hit]:
    paths = [
        e.path
        for d in ("/etc/ssh", "/etc/dropbear")
        for e in ctx.fs.listdir(d)
        if e.kind == "file" and HOST_KEY.match(e.path)
    ]
    return listed(paths, "SSH host key")
