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
