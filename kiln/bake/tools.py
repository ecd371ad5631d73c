"""Running the Debian tools a bake uses, with one clear error when one is missing or fails."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

# Tool -> the Debian package that ships it (scripts/install lists them all).
PACKAGES = {
    "busybox": "busybox-static",
    "dropbear": "dropbear-bin",
    "dropbearkey": "dropbear-bin",
    "mke2fs": "e2fsprogs",
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux",
    "ldd": "libc-bin",
}
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])


def which(tool: str) -> Path:
    """Absolute path of ``tool`` (also looked for in the sbin directories), or ``KilnError``."""
    found = shutil.which(tool, path=_SEARCH)
    if found is None:
        pkg = PACKAGES.get(tool, tool)
        raise KilnError(
            errors.InternalError,
            f"bake: {tool} not found; install the Debian package {pkg} (scripts/install)",
        )
    return Path(found)


def run(
    argv: Sequence[str | Path | int],
    *,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> bytes:
    """Run ``argv`` (its first element resolved with :func:`which`); stdout, or ``KilnError``."""
    cmd = [str(which(str(argv[0]))), *map(str, argv[1:])]
    log.debug("run %s", cmd)
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.run(cmd, input=stdin, cwd=cwd, env=full_env, capture_output=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        raise KilnError(
            errors.InternalError,
            f"bake: {argv[0]} failed (exit {proc.returncode}): "
            f"{detail[-1] if detail else 'no output'}",
        )
    return proc.stdout


def mounts_under(directory: Path) -> list[Path]:
    """What is mounted at or below ``directory``, deepest first (from /proc/self/mounts)."""
    base = directory.resolve()
    found = []
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        point = Path(fields[1].replace("\\040", " "))
        if point == base or base in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def remove_scratch(directory: Path) -> None:
    """Remove a bake's scratch directory, unmounting first what a killed mmdebstrap left
    mounted in its root filesystem (``/proc``, ``/sys``, ``/dev`` binds): deleting through a
    bind of the host's ``/dev/shm`` would delete the host's shared memory files."""
    for point in mounts_under(directory):
        subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)
        log.warning("unmounted %s, left by an interrupted bake", point)
    if mounts_under(directory):
        raise KilnError(
            errors.InternalError,
            f"{directory} still has mounts below it; remove them before baking again",
        )
    shutil.rmtree(directory, ignore_errors=True)
