"""What starts at boot: systemd units wanted by a target (the ``*.wants`` links under
/etc/systemd/system), SysV ``/etc/rc?.d/S*`` links, busybox init's /etc/inittab and
/etc/init.d scripts; and whether a host firewall is configured."""

from __future__ import annotations

import posixpath
import re

from kiln.scan.context import Hit, ScanContext, listed

#: Services CIS section 2 wants gone from a server image (unit or script names).
INSECURE = frozenset(
    {
        "telnet",
        "telnetd",
        "inetd",
        "xinetd",
        "openbsd-inetd",
        "rsh",
        "rlogin",
        "rexec",
        "tftp",
        "tftpd-hpa",
        "vsftpd",
        "proftpd",
        "avahi-daemon",
        "cups",
        "nfs-server",
        "rpcbind",
        "snmpd",
        "ypserv",
        "slapd",
        "dovecot",
        "smbd",
        "squid",
        "apache2",
    }
)
RC_LINK = re.compile(r"^/etc/rc[2-5S]\.d/S\d\d(.+)$")


def enabled(ctx: ScanContext) -> list[tuple[str, str]]:
    """(service name, where it is enabled) in path order."""
    out: list[tuple[str, str]] = []
    for wants in ctx.fs.listdir("/etc/systemd/system"):
        if wants.kind == "dir" and wants.path.endswith(".wants"):
            for e in ctx.fs.listdir(wants.path):
                name = posixpath.basename(e.path)
                out.append((name.removesuffix(".service").removesuffix(".socket"), e.path))
    for level in ("2", "3", "4", "5", "S"):
        for e in ctx.fs.listdir(f"/etc/rc{level}.d"):
            m = RC_LINK.match(e.path)
            if m:
                out.append((m.group(1), e.path))
    if ctx.exists("/etc/inittab"):
        for e in ctx.fs.listdir("/etc/init.d"):
            if e.kind in ("file", "symlink") and not posixpath.basename(e.path).startswith("."):
                out.append((posixpath.basename(e.path), e.path))
    return out


def inventory(ctx: ScanContext) -> list[Hit]:
    found = enabled(ctx)
    names = sorted({name for name, _ in found})
    if not names:
        return []
    return [
        Hit(
            f"{len(names)} services start at boot: {', '.join(names)}"[:1000],
            tuple(p for _, p in found)[:100],
        )
    ]


def insecure(ctx: ScanContext) -> list[Hit]:
    paths = [where for name, where in enabled(ctx) if name in INSECURE]
    return listed(paths, "insecure legacy service enabled")


def firewall(ctx: ScanContext) -> list[Hit]:
    """A hit when nothing loads firewall rules at boot: nftables enabled with a ruleset in
    /etc/nftables.conf, iptables-persistent's rules, ufw or firewalld enabled."""
    names = {name for name, _ in enabled(ctx)}
    nft = ctx.text("/etc/nftables.conf") or ""
    rules = any(
        line.strip().startswith(("table", "add table", "chain", "add rule"))
        for line in nft.splitlines()
    )
    if "nftables" in names and rules:
        return []
    if "netfilter-persistent" in names and ctx.exists("/etc/iptables/rules.v4"):
        return []
    if names & {"ufw", "firewalld"}:
        return []
    if "nftables" in names:
        return [
            Hit(
                "nftables is enabled but /etc/nftables.conf defines no table",
                ("/etc/nftables.conf",),
            )
        ]
    return [Hit("no host firewall is enabled (nftables, iptables-persistent, ufw, firewalld)")]
