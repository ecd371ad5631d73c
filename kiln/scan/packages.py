"""The package inventory of an image's root filesystem (docs/sbom.md), read like the checks
read it: through :class:`~kiln.scan.fs.Ext4Image`, never mounted.

* dpkg's database, ``/var/lib/dpkg/status``, parsed with python-debian (``debian.deb822``):
  every package whose ``Status`` is ``install ok installed``, with its version, architecture
  and source package (the name and version Debian's security tracker uses).
* Without dpkg (the ``micro`` image: busybox and dropbear copied from the host's Debian
  packages, kiln/bake/rootfs.py) what the binaries themselves say: busybox's version string
  (``BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)``) and its applets (the symlinks to
  ``/bin/busybox``), dropbear's SSH banner (``SSH-2.0-dropbear_2022.83``: the upstream
  version only) and glibc's (``GNU C Library (Debian GLIBC 2.36-9+deb12u14)``). Nothing else
  is claimed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from debian import deb822

from kiln.scan.fs import Ext4Image

DPKG_STATUS = "/var/lib/dpkg/status"
STATUS_LIMIT = 64 << 20
BINARY_LIMIT = 16 << 20
BUSYBOX = "/bin/busybox"
#: e_machine of an ELF header -> Debian's architecture name.
ELF_ARCH = {0x3E: "amd64", 0xB7: "arm64", 0x03: "i386", 0x28: "armhf", 0xF3: "riscv64"}
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package. ``source``/``source_version`` are what Debian's security tracker
    names (the binary's version when dpkg does not give the source its own); ``kind`` is
    ``deb`` (a dpkg package, or a file a Debian package installed, with its Debian version)
    or ``generic`` (only the upstream version is known); ``path`` is where it was read."""

    name: str
    version: str
    arch: str | None
    source: str
    source_version: str
    kind: str
    path: str
    applets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OsRelease:
    id: str
    version_id: str
    codename: str
    pretty_name: str

    @property
    def distro(self) -> str | None:
        """The purl ``distro`` qualifier (``debian-12``), None when the release is unknown."""
        return f"{self.id}-{self.version_id}" if self.id and self.version_id else None


@dataclass(frozen=True, slots=True)
class Inventory:
    """What an image has installed, sorted by name; ``source`` is ``dpkg`` or ``binaries``."""

    os: OsRelease
    source: str
    packages: tuple[Package, ...]


def read_os_release(fs: Ext4Image) -> OsRelease:
    fields: dict[str, str] = {}
    for line in (fs.read_text("/etc/os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    version_id = fields.get("VERSION_ID", "")
    if not version_id and fields.get("ID", "debian") == "debian":
        version_id = (fs.read_text("/etc/debian_version") or "").strip().split(".")[0]
    return OsRelease(
        fields.get("ID", ""),
        version_id,
        fields.get("VERSION_CODENAME", "") or DEBIAN_CODENAMES.get(version_id, ""),
        fields.get("PRETTY_NAME", ""),
    )


DEBIAN_CODENAMES = {
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
}


def read_inventory(fs: Ext4Image) -> Inventory:
    """The packages of the root filesystem ``fs``. Raises FilesystemError (kiln/scan/fs.py)
    when a file cannot be read."""
    os_release = read_os_release(fs)
    status = fs.read_text(DPKG_STATUS, STATUS_LIMIT)
    if status is not None:
        return Inventory(os_release, "dpkg", parse_dpkg_status(status))
    return Inventory(os_release, "binaries", _binaries(fs))


def parse_dpkg_status(text: str) -> tuple[Package, ...]:
    """The installed packages of a dpkg status file, by name (then architecture)."""
    out = []
    for para in deb822.Packages.iter_paragraphs(text.splitlines(), use_apt_pkg=False):
        name, version = para.get("Package"), para.get("Version")
        if not name or not version or para.get("Status", "").split()[-1:] != ["installed"]:
            continue
        arch = para.get("Architecture") or None
        source, source_version = name, version
        m = _SOURCE.match(para.get("Source", "").strip())
        if m:
            source = m.group(1)
            source_version = m.group(2) or version
        out.append(Package(name, version, arch, source, source_version, "deb", DPKG_STATUS))
    return tuple(sorted(out, key=lambda p: (p.name, p.arch or "")))


_BUSYBOX_VERSION = re.compile(rb"BusyBox v([0-9][\w.~+-]*)(?: \(Debian ([\w.:~+-]+)\))?")
_DROPBEAR_VERSION = re.compile(rb"SSH-2\.0-dropbear_([0-9][\w.]*)")
_GLIBC_VERSION = re.compile(rb"GNU C Library \(Debian GLIBC ([\w.:~+-]+)\)")
_BINNMU = re.compile(r"\+b\d+$")
#: (file, the string that names its version, package name, source package, Debian-versioned)
BINARIES = (
    ("/usr/sbin/dropbear", _DROPBEAR_VERSION, "dropbear", "dropbear", False),
    ("/lib/x86_64-linux-gnu/libc.so.6", _GLIBC_VERSION, "libc6", "glibc", True),
    ("/lib/aarch64-linux-gnu/libc.so.6", _GLIBC_VERSION, "libc6", "glibc", True),
)


def _arch(data: bytes) -> str | None:
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    return ELF_ARCH.get(struct.unpack_from("<H", data, 18)[0])


def _binaries(fs: Ext4Image) -> tuple[Package, ...]:
    out: list[Package] = []
    busybox = fs.read_file(BUSYBOX, BINARY_LIMIT)
    if busybox is not None:
        m = _BUSYBOX_VERSION.search(busybox)
        if m:
            applets = tuple(
                sorted(
                    e.path
                    for e in fs.walk("/")
                    if e.kind == "symlink" and fs.readlink(e.inode) == BUSYBOX
                )
            )
            debian_version = m.group(2).decode() if m.group(2) else None
            out.append(
                Package(
                    "busybox",
                    debian_version or m.group(1).decode(),
                    _arch(busybox),
                    "busybox",
                    _BINNMU.sub("", debian_version or m.group(1).decode()),
                    "deb" if debian_version else "generic",
                    BUSYBOX,
                    applets,
                )
            )
    for path, pattern, name, source, debian_versioned in BINARIES:
        data = fs.read_file(path, BINARY_LIMIT)
        m = pattern.search(data) if data is not None else None
        if data is None or m is None:
            continue
        version = m.group(1).decode()
        kind = "deb" if debian_versioned else "generic"
        out.append(
            Package(name, version, _arch(data), source, _BINNMU.sub("", version), kind, path)
        )
    return tuple(sorted(out, key=lambda p: p.name))
