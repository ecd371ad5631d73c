"""Kernel parameters as the image sets them at boot (the sysctl.d order: /usr/lib/sysctl.d,
/lib/sysctl.d, /etc/sysctl.d by file name, the later file winning, then /etc/sysctl.conf)
against the hardened values CIS asks for; a parameter no file sets has the kernel's default."""

from __future__ import annotations

import posixpath

from kiln.scan.context import Hit, ScanContext

#: parameter -> (wanted value, the kernel's default, CIS section)
WANTED = {
    "kernel.randomize_va_space": ("2", "2", "1.5.1"),
    "kernel.yama.ptrace_scope": ("1", "0", "1.5.2"),
    "fs.suid_dumpable": ("0", "0", "1.5.3"),
    "net.ipv4.ip_forward": ("0", "0", "3.3.1"),
    "net.ipv4.conf.all.send_redirects": ("0", "1", "3.3.2"),
    "net.ipv4.icmp_ignore_bogus_error_responses": ("1", "1", "3.3.3"),
    "net.ipv4.icmp_echo_ignore_broadcasts": ("1", "1", "3.3.4"),
    "net.ipv4.conf.all.accept_redirects": ("0", "1", "3.3.5"),
    "net.ipv4.conf.all.secure_redirects": ("0", "1", "3.3.6"),
    "net.ipv4.conf.all.rp_filter": ("1", "0", "3.3.7"),
    "net.ipv4.conf.all.accept_source_route": ("0", "0", "3.3.8"),
    "net.ipv4.conf.all.log_martians": ("1", "0", "3.3.9"),
    "net.ipv4.tcp_syncookies": ("1", "1", "3.3.10"),
    "net.ipv6.conf.all.accept_ra": ("0", "1", "3.3.11"),
}
DIRS = ("/usr/lib/sysctl.d", "/lib/sysctl.d", "/etc/sysctl.d")


def effective(ctx: ScanContext) -> dict[str, tuple[str, str]]:
    """parameter -> (value, file) as the image's sysctl files set them."""
    files: dict[str, str] = {}  # basename -> path; /etc overrides /usr/lib of the same name
    for d in DIRS:
        for path in ctx.glob_dir(d, ".conf"):
            files[posixpath.basename(path)] = path
    ordered = [files[name] for name in sorted(files)] + ["/etc/sysctl.conf"]
    out: dict[str, tuple[str, str]] = {}
    for path in ordered:
        for file, _n, line in ctx.config_lines(path):
            key, sep, value = line.lstrip("-").partition("=")
            if sep:
                out[key.strip().replace("/", ".")] = (value.strip(), file)
    return out


def run(ctx: ScanContext) -> list[Hit]:
    if ctx.fs.lookup("/etc") is None:
        return []
    found = effective(ctx)
    hits = []
    for key, (want, default, _cis) in WANTED.items():
        value, where = found.get(key, (default, ""))
        if value != want:
            source = f"set in {where}" if where else "the kernel default, no file sets it"
            hits.append(
                Hit(f"sysctl {key} = {value} ({source}); want {want}", (where,) if where else ())
            )
    return hits
