"""Run each benchmarked tool as a child process and measure wall time and peak RSS.

Peak RSS and CPU time are GNU time's (``/usr/bin/time -f "%M %U %S"``) for the tool's
process; see ``run`` for why not our own ``os.wait4``. The contenders: Kiln
(``python bench/kiln_op.py``), restic 0.14 (repository v2, compression auto), borg 1.2
(``-e none``, ``--compression zstd,1``) and
``qemu-img convert -O qcow2 -c -o compression_type=zstd``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float  # wall time of the child, spawn to exit
    cpu_seconds: float  # user + system CPU time of the child: less sensitive to other load
    max_rss: int  # bytes
    stdout: str


class ToolFailed(RuntimeError):
    pass


GNU_TIME = "/usr/bin/time"  # Debian package `time`


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run `cmd` to completion; raise ToolFailed (with its stderr) on a non-zero exit.

    Peak RSS and CPU time come from GNU time, not from our own wait4: on Linux a child's
    ru_maxrss starts at the RSS of the process it was forked from, so a child of this (large)
    Python process would report at least our own size. GNU time is small and forks the tool.
    """
    if not os.path.exists(GNU_TIME):
        raise ToolFailed(
            f"{GNU_TIME} is missing: install the Debian package `time` "
            "(KILN_INSTALL_BENCH=1 scripts/install)"
        )
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(prefix="kiln-bench-time-") as stats,
    ):
        t0 = time.perf_counter()
        p = subprocess.run(
            [GNU_TIME, "-q", "-f", "%M %U %S", "-o", stats.name, *cmd],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        fields = Path(stats.name).read_text().split()
    if p.returncode != 0:
        raise ToolFailed(f"{' '.join(cmd)} exited {p.returncode}: {stderr.strip()[-2000:]}")
    max_rss_kib, user, system = int(fields[-3]), float(fields[-2]), float(fields[-1])
    return Run(seconds, user + system, max_rss_kib * 1024, stdout)


def tree_bytes(path: Path) -> tuple[int, int]:
    """(sum of file sizes, number of files) under `path`: what a store or repository holds."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
                files += 1
            except FileNotFoundError:
                continue
    return total, files


def fork_dir(src: Path, dst: Path) -> None:
    """A full copy of a store/repository (and its cache) so later steps start from one state."""
    if dst.exists():
        shutil.rmtree(dst)
    subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dst)], check=True)


def same_bytes(a: Path, b: Path) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b)]).returncode == 0


# --- Kiln ----------------------------------------------------------------------------------
KILN_SRC: Path | None = (
    None  # a tree holding another kiln/ to benchmark (default: the installed one)
)


def kiln(*args: str) -> tuple[Run, dict[str, object]]:
    env = {"PYTHONPATH": str(KILN_SRC)} if KILN_SRC else None
    # cwd too: the store's fork server starts with the working directory first on its path,
    # so from the repository root its workers would import this checkout's kiln, not KILN_SRC's.
    r = run(
        [sys.executable, str(Path(__file__).with_name("kiln_op.py")), *args], env=env, cwd=KILN_SRC
    )
    return r, json.loads(r.stdout.strip().splitlines()[-1])


# --- restic --------------------------------------------------------------------------------
def restic_env(state: Path) -> dict[str, str]:
    return {
        "RESTIC_REPOSITORY": str(state / "repo"),
        "RESTIC_PASSWORD": "kiln-bench",
        "RESTIC_CACHE_DIR": str(state / "cache"),
        "RESTIC_PROGRESS_FPS": "0.1",
    }


def restic(state: Path, *args: str) -> Run:
    return run(["restic", "--quiet", *args], env=restic_env(state))


def restic_backup(state: Path, path: Path, *flags: str) -> tuple[Run, str]:
    r = run(["restic", "backup", "--json", *flags, str(path)], env=restic_env(state))
    snap = ""
    for line in r.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("message_type") == "summary":
            snap = str(msg["snapshot_id"])
    return r, snap


# --- borg ----------------------------------------------------------------------------------
def borg_env(state: Path) -> dict[str, str]:
    return {
        "BORG_REPO": str(state / "repo"),
        "BORG_BASE_DIR": str(state / "home"),
        "BORG_CACHE_DIR": str(state / "cache"),
        "BORG_CONFIG_DIR": str(state / "config"),
        "BORG_SECURITY_DIR": str(state / "security"),
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
    }


def borg(state: Path, *args: str, cwd: Path | None = None) -> Run:
    return run(["borg", *args], env=borg_env(state), cwd=cwd)
