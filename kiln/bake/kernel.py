"""The installed Debian kernel (linux-image-amd64) and the modules an initramfs must load.

Debian builds virtio, ext4, vfat and iso9660 as modules, so a disk-booting image needs an
initramfs that ``insmod``s them (busybox has no ``modprobe`` index support worth trusting):
this module resolves their dependency closure from ``modules.dep`` and orders it so that every
module comes after the modules it needs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

# What the micro image loads at boot, before its root is mounted. crc32c_generic first: ext4 and
# jbd2 only name it as a soft dependency ("crypto-crc32c"), which modules.dep does not list.
BOOT_MODULES = (
    "crc32c_generic",
    "ext4",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_rng",
    "vfat",
    "nls_cp437",  # vfat's default codepage and I/O character sets (Debian builds them as
    "nls_ascii",  # modules; without them mounting a vfat seed fails)
    "nls_utf8",
    "isofs",
    "button",  # ACPI power button: lets QEMU's system_powerdown reach acpid
    "evdev",  # ... through /dev/input/event*
)


@dataclass(frozen=True, slots=True)
class Kernel:
    version: str
    image: Path  # /boot/vmlinuz-VERSION
    modules_dir: Path  # /lib/modules/VERSION


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    path: Path


def _version_key(version: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", version)]


def find_kernel(
    boot: Path = Path("/boot"),
    modules_root: Path = Path("/lib/modules"),
    version: str | None = None,
) -> Kernel:
    """The newest kernel with both ``vmlinuz-V`` in ``boot`` and ``V/modules.dep``, or ``version``."""
    found: list[Kernel] = []
    for image in boot.glob("vmlinuz-*"):
        v = image.name.removeprefix("vmlinuz-")
        mdir = modules_root / v
        if (mdir / "modules.dep").is_file() and (version is None or v == version):
            found.append(Kernel(v, image, mdir))
    if not found:
        want = f"kernel {version}" if version else "a kernel"
        raise KilnError(
            errors.InternalError,
            f"bake: {want} not found in {boot} with modules in {modules_root}; "
            "install the Debian package linux-image-amd64 (scripts/install)",
        )
    return max(found, key=lambda k: _version_key(k.version))


def _name(relpath: str) -> str:
    return Path(relpath).name.split(".ko")[0].replace("-", "_")


def resolve_modules(kernel: Kernel, wanted: tuple[str, ...] = BOOT_MODULES) -> list[Module]:
    """``wanted`` and everything they depend on, dependencies first, without duplicates.

    Modules built into the kernel (``modules.builtin``) are skipped. A module that is neither
    built in nor present raises ``KilnError``.
    """
    deps: dict[str, tuple[Path, list[str]]] = {}
    for line in (kernel.modules_dir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[_name(target)] = (kernel.modules_dir / target, [_name(d) for d in rest.split()])
    builtin_file = kernel.modules_dir / "modules.builtin"
    builtin = (
        {_name(x) for x in builtin_file.read_text().split()} if builtin_file.exists() else set()
    )

    ordered: list[Module] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in done:
            return
        if name in chain:
            raise KilnError(errors.InternalError, f"bake: module dependency cycle: {chain}")
        if name not in deps:
            if name in builtin:
                done.add(name)
                return
            raise KilnError(
                errors.InternalError,
                f"bake: kernel module {name} not found for kernel {kernel.version}",
            )
        path, needs = deps[name]
        for dep in needs:
            visit(dep, (*chain, name))
        done.add(name)
        ordered.append(Module(name, path))

    for want in wanted:
        visit(want, ())
    log.debug("initramfs modules: %s", [m.name for m in ordered])
    return ordered
