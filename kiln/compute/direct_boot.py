"""Direct kernel boot: do what the image's own bootloader would do, without the bootloader.

An HVM image baked by Kiln (kiln/bake/disk.py) — or any disk laid out the same way — boots
through SeaBIOS, syslinux's MBR, ``ldlinux.sys`` and its ``syslinux.cfg``, which loads a
compressed bzImage that then decompresses itself: under TCG that is about half of the boot.
When the disk's configuration is simple enough to know for certain what syslinux would boot
(one default label, no menu, no interaction), Kiln reads that kernel, initrd and command line
from the disk and hands them to QEMU (``-kernel/-initrd/-append``), with the command line
syslinux itself would pass (``BOOT_IMAGE=<kernel> <APPEND> initrd=<initrd>``).

Two steps make the boot faster and leave the guest's result the same:

* the bzImage's payload is decompressed once on the host and, when the kernel has a PVH entry
  point (an ELF note, ``CONFIG_PVH``) *and* its command line has ``nokaslr``, QEMU boots the
  ELF directly — the PVH entry never randomises the kernel's address, so with KASLR enabled the
  bzImage is booted instead (still without the bootloader);
* an initrd that is a single compressed cpio is stored decompressed (the kernel unpacks the
  same files either way; under TCG its decompression costs tenths of a second).

Anything else — another bootloader, a menu, a ``.c32`` module, several initrds, a kernel the
guest changed (its overlay wrote into the boot partition) — boots through the firmware as
before. ``KILN_DIRECT_KERNEL=0`` turns the fast path off.

What is extracted from a base (``bases/<snap>.raw``, read-only) is cached beside it in
``bases/<snap>.raw.boot/`` (``boot.json``, ``kernel``, ``initrd``); a base that has no direct
boot is remembered too (``boot.json`` with ``"direct": false``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import lzma
import os
import shlex
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import zstandard

from kiln.disks import overlay_changed_extents
from kiln.errors import KilnError
from kiln.runtime.volume_disks import base_of

log = logging.getLogger(__name__)

ENV = "KILN_DIRECT_KERNEL"
CACHE_SUFFIX = ".boot"
STATE = "boot.json"
FORMAT_VERSION = 1
SECTOR = 512
FAT_TYPES = frozenset({0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF})
# where SYSLINUX looks for its configuration, in its order
CONFIG_PATHS = ("boot/syslinux/syslinux.cfg", "syslinux/syslinux.cfg", "syslinux.cfg")
# directives that do not change what an unattended boot of the default label loads
IGNORED = frozenset({"serial", "say", "font", "noescape", "allowoptions", "implicit"})
XEN_ELFNOTE_PHYS32_ENTRY = 18
MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class NotDirect(Exception):
    """The disk cannot be booted directly with a result known to be the bootloader's."""


@dataclass(frozen=True, slots=True)
class DirectBoot:
    """What QEMU boots instead of the firmware: ``-kernel``, ``-initrd``, ``-append``."""

    kernel: Path
    initrd: Path | None
    append: str
    pvh: bool  # the kernel is the uncompressed ELF, entered through its PVH note


@dataclass(frozen=True, slots=True)
class BootEntry:
    """What syslinux boots unattended: paths on the boot partition and its APPEND."""

    kernel: str
    initrd: str | None
    append: str


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "false", "off")


# --- the disk -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Partition:
    offset: int
    size: int
    type: int
    active: bool


def mbr_partitions(head: bytes) -> list[Partition]:
    """The primary partitions of an MBR (the first sector); [] if there is no MBR signature."""
    if len(head) < SECTOR or head[510:512] != b"\x55\xaa":
        return []
    parts = []
    for i in range(4):
        e = head[446 + 16 * i : 462 + 16 * i]
        start, count = struct.unpack("<II", e[8:16])
        if e[4] and count:
            parts.append(Partition(start * SECTOR, count * SECTOR, e[4], e[0] == 0x80))
    return parts


def boot_partition(disk: Path) -> Partition:
    """The active FAT partition syslinux's MBR code would chain to."""
    with disk.open("rb") as f:
        parts = mbr_partitions(f.read(SECTOR))
    active = [p for p in parts if p.active]
    if len(active) != 1 or active[0].type not in FAT_TYPES:
        raise NotDirect("no single active FAT partition")
    return active[0]


def _mtools_env() -> dict[str, str]:
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def fat_read(disk: Path, offset: int, name: str, dest: Path) -> bool:
    """Copy ``name`` (a path on the FAT filesystem at ``offset``) to ``dest``; False if absent."""
    if shutil.which("mcopy") is None:
        raise NotDirect("mcopy not found (Debian package mtools)")
    res = subprocess.run(
        ["mcopy", "-n", "-i", f"{disk}@@{offset}", f"::{name}", str(dest)],
        capture_output=True,
        env=_mtools_env(),
        timeout=60,
        check=False,
    )
    return res.returncode == 0 and dest.is_file()


# --- syslinux.cfg ---------------------------------------------------------------------------
def parse_syslinux(text: str) -> BootEntry:
    """The entry SYSLINUX boots with nobody at the console; NotDirect if that is not certain."""
    default: str | None = None
    prompt, timeout = 0, 0
    labels: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        key, rest = word.lower(), rest.strip()
        if key == "label":
            current = labels.setdefault(rest, {})
        elif key in ("linux", "kernel", "initrd", "append") and current is not None:
            current[key] = rest
        elif key == "append" and current is None:
            raise NotDirect("global APPEND")
        elif key == "default":
            default = rest
        elif key == "prompt":
            prompt = int(rest or "0")
        elif key == "timeout":
            timeout = int(rest or "0")
        elif key not in IGNORED:
            raise NotDirect(f"directive {word!r}")
    if prompt and not timeout:
        raise NotDirect("PROMPT 1 with no TIMEOUT waits at the console")
    if default is None or default not in labels:
        raise NotDirect("no DEFAULT label")
    entry = labels[default]
    kernel = entry.get("linux") or entry.get("kernel")
    if not kernel or (
        entry.get("kernel")
        and kernel.rsplit(".", 1)[-1].lower()
        in ("c32", "com", "cbt", "bin", "bs", "bss", "0", "img")
    ):
        raise NotDirect(f"label {default!r} boots no Linux kernel")
    append = entry.get("append", "")
    if append == "-":
        append = ""
    initrd = entry.get("initrd")
    if initrd is None:
        found = [a for a in shlex.split(append) if a.startswith("initrd=")]
        if len(found) > 1:
            raise NotDirect("several initrd= options")
        initrd = found[0].removeprefix("initrd=") if found else None
    if initrd is not None and "," in initrd:
        raise NotDirect("several initrds")
    return BootEntry(kernel, initrd, append)


def syslinux_cmdline(entry: BootEntry) -> str:
    """The command line SYSLINUX passes to the kernel (seen in a firmware boot's dmesg)."""
    parts = [f"BOOT_IMAGE={entry.kernel}"]
    if entry.append:
        parts.append(entry.append)
    if entry.initrd is not None and not any(a.startswith("initrd=") for a in entry.append.split()):
        parts.append(f"initrd={entry.initrd}")
    return " ".join(parts)


# --- kernel and initrd ----------------------------------------------------------------------
def _decompress(data: bytes, kind: str) -> tuple[bytes, bytes] | None:
    """(output, bytes after the stream) of the one stream at the start of ``data``; None if
    the stream is cut short or corrupt."""
    try:
        if kind == "xz":
            dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            out, rest, done = dec.decompress(data), dec.unused_data, dec.eof
        elif kind == "gzip":
            gz = zlib.decompressobj(wbits=31)
            out, rest, done = gz.decompress(data), gz.unused_data, gz.eof
        else:
            zd = zstandard.ZstdDecompressor().decompressobj()
            out, rest, done = zd.decompress(data), zd.unused_data, zd.eof
    except (lzma.LZMAError, OSError, EOFError, zstandard.ZstdError, ValueError, zlib.error):
        return None
    return (bytes(out), bytes(rest)) if done else None


def _kind(data: bytes) -> str | None:
    return next((k for magic, k in MAGICS if data.startswith(magic)), None)


def bzimage_payload(image: bytes) -> bytes | None:
    """The uncompressed ELF inside a bzImage (boot protocol >= 2.08), or None."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    (version,) = struct.unpack("<H", image[0x206:0x208])
    if version < 0x208:
        return None
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack("<II", image[0x248:0x250])
    start = (setup_sects + 1) * SECTOR + offset
    payload = image[start : start + length]
    kind = _kind(payload)
    got = _decompress(payload, kind) if kind is not None else None
    if got is None or len(got[1]) > 4:  # after the stream: at most the size (a le32)
        return None
    return got[0] if got[0].startswith(b"\x7fELF") else None


def has_pvh_note(elf: bytes) -> bool:
    """Does this 64-bit little-endian ELF carry XEN_ELFNOTE_PHYS32_ENTRY (what QEMU enters)?"""
    if len(elf) < 64 or elf[4] != 2 or elf[5] != 1:
        return False
    (phoff,) = struct.unpack("<Q", elf[0x20:0x28])
    phentsize, phnum = struct.unpack("<HH", elf[0x36:0x3A])
    for i in range(phnum):
        ph = elf[phoff + i * phentsize : phoff + (i + 1) * phentsize]
        if len(ph) < 56 or struct.unpack("<I", ph[0:4])[0] != 4:  # PT_NOTE
            continue
        (off,) = struct.unpack("<Q", ph[8:16])
        (size,) = struct.unpack("<Q", ph[32:40])
        notes, pos = elf[off : off + size], 0
        while pos + 12 <= len(notes):
            namesz, descsz, ntype = struct.unpack("<III", notes[pos : pos + 12])
            name = notes[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def plain_initrd(data: bytes) -> bytes | None:
    """The initrd as an uncompressed newc cpio when it is exactly one compressed cpio stream
    (trailing zero padding allowed); None otherwise (e.g. an early-microcode cpio in front)."""
    kind = _kind(data)
    got = _decompress(data, kind) if kind is not None else None
    if got is None or got[1].strip(b"\0") or not got[0].startswith(b"070701"):
        return None
    return got[0]


# --- extraction and cache -------------------------------------------------------------------
def extract(disk: Path, dest: Path) -> DirectBoot:
    """Read the disk's bootloader configuration and write ``kernel`` (and ``initrd``) into
    ``dest``; NotDirect if the disk does not boot in a way known here."""
    part = boot_partition(disk)
    with tempfile.TemporaryDirectory(dir=dest) as d:
        scratch = Path(d)
        if not fat_read(disk, part.offset, "ldlinux.sys", scratch / "ldlinux.sys"):
            raise NotDirect("the boot partition has no SYSLINUX (ldlinux.sys)")
        for name in CONFIG_PATHS:
            if fat_read(disk, part.offset, name, scratch / "cfg"):
                break
        else:
            raise NotDirect("no syslinux.cfg")
        entry = parse_syslinux((scratch / "cfg").read_text(errors="replace"))
        if not fat_read(disk, part.offset, entry.kernel.lstrip("/"), scratch / "kernel"):
            raise NotDirect(f"kernel {entry.kernel} not on the boot partition")
        if entry.initrd is not None and not fat_read(
            disk, part.offset, entry.initrd.lstrip("/"), scratch / "initrd"
        ):
            raise NotDirect(f"initrd {entry.initrd} not on the boot partition")
        append = syslinux_cmdline(entry)
        image = (scratch / "kernel").read_bytes()
        if image[0x202:0x206] != b"HdrS":
            raise NotDirect("the kernel is not a bzImage")
        pvh = False
        if "nokaslr" in append.split():
            elf = bzimage_payload(image)
            if elf is not None and has_pvh_note(elf):
                image, pvh = elf, True
        (dest / "kernel").write_bytes(image)
        initrd = None
        if entry.initrd is not None:
            data = (scratch / "initrd").read_bytes()
            (dest / "initrd").write_bytes(plain_initrd(data) or data)
            initrd = dest / "initrd"
    return DirectBoot(dest / "kernel", initrd, append, pvh)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load(cache: Path) -> DirectBoot | None | bool:
    """The cached answer: a DirectBoot, None (no direct boot), or False (nothing cached)."""
    try:
        state = json.loads((cache / STATE).read_text())
    except (OSError, ValueError):
        return False
    if state.get("version") != FORMAT_VERSION:
        return False
    if not state.get("direct"):
        return None
    initrd = cache / "initrd" if state.get("initrd") else None
    if not (cache / "kernel").is_file() or (initrd is not None and not initrd.is_file()):
        return False
    return DirectBoot(cache / "kernel", initrd, str(state["append"]), bool(state["pvh"]))


def for_base(base: Path) -> DirectBoot | None:
    """The direct boot of a read-only base, extracted once into ``<base>.boot/``; None if the
    base must boot through its firmware. Safe to race (a lock beside the cache)."""
    cache = base.with_name(base.name + CACHE_SUFFIX)
    got = _load(cache)
    if got is not False:
        return got if isinstance(got, DirectBoot) else None
    with _locked(cache):
        got = _load(cache)
        if got is not False:
            return got if isinstance(got, DirectBoot) else None
        tmp = base.with_name(f".{cache.name}.{os.getpid()}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            state: dict[str, object] = {"version": FORMAT_VERSION}
            try:
                made = extract(base, tmp)
                state |= {
                    "direct": True,
                    "append": made.append,
                    "pvh": made.pvh,
                    "initrd": made.initrd is not None,
                }
            except NotDirect as e:
                state |= {"direct": False, "why": str(e)}
                log.info("%s: boots through its firmware (%s)", base.name, e)
            (tmp / STATE).write_text(json.dumps(state, indent=1) + "\n")
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(tmp, cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    got = _load(cache)
    if not isinstance(got, DirectBoot):
        return None
    log.info("%s: direct kernel boot (%s)", base.name, "PVH" if got.pvh else "bzImage")
    return got


def for_kernel_image(image: Path, initrd: Path | None, append: str) -> DirectBoot:
    """The boot of a kernel image Kiln holds as a file (an AKI's, restored read-only): its PVH
    ELF when the bzImage has a PVH note and ``append`` has ``nokaslr`` — decompressed once into
    ``<image>.pvh`` beside it (safe to race) — else the bzImage itself."""
    if "nokaslr" in append.split():
        elf = image.with_name(image.name + ".pvh")
        if elf.is_file():
            return DirectBoot(elf, initrd, append, True)
        with _locked(elf):
            if not elf.is_file():
                payload = bzimage_payload(image.read_bytes())
                if payload is not None and has_pvh_note(payload):
                    tmp = elf.with_name(f".{elf.name}.{os.getpid()}.partial")
                    tmp.write_bytes(payload)
                    os.replace(tmp, elf)
            if elf.is_file():
                return DirectBoot(elf, initrd, append, True)
    return DirectBoot(image, initrd, append, False)


def remove_cache(base: Path) -> None:
    """Forget a base's direct-boot cache (it is rebuilt at the next launch)."""
    cache = base.with_name(base.name + CACHE_SUFFIX)
    shutil.rmtree(cache, ignore_errors=True)
    cache.with_name(cache.name + ".lock").unlink(missing_ok=True)


def for_disk(path: Path, fmt: str, scratch: Path) -> DirectBoot | None:
    """The direct boot of a VM's boot disk, or None to boot it through the firmware.

    A qcow2 overlay made by Kiln (``<overlay>.base`` names its base) boots its base's cached
    kernel only while the guest has written nothing into the boot partition — otherwise what the
    bootloader would load may differ, and the firmware boots it. A raw disk (an instance-store
    root, which the guest writes in place) is read afresh into ``scratch`` on every boot.
    """
    if not enabled():
        return None
    try:
        if fmt == "qcow2":
            try:
                base = base_of(path)
            except OSError:
                return None
            part = boot_partition(base)
            for e in overlay_changed_extents(path):
                if e.offset < part.offset + part.size and part.offset < e.end:
                    log.info("%s: the guest changed its boot partition; firmware boot", path.name)
                    return None
            return for_base(base)
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        return extract(path, scratch)
    except NotDirect as e:
        log.info("%s: boots through its firmware (%s)", path.name, e)
        return None
    except (OSError, subprocess.SubprocessError, ValueError, KilnError) as e:
        log.warning("%s: direct boot unavailable, firmware boot: %s", path.name, e)
        return None
