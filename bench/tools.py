"""Run each benchmarked tool as a child process and measure wall time and peak RSS.

Peak RSS is the child's ``ru_maxrss`` from ``os.wait4`` (the largest resident set of the child
or any descendant it waited for). The contenders: Kiln (``python bench/kiln_op.py``), restic
0.14 (repository v2, compression auto), borg 1.2 (``-e none``, ``--compression zstd,1``) and
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


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run `cmd` to completion; raise ToolFailed (with its stderr) on a non-zero exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, cwd=cwd)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if p.returncode != 0:
        raise ToolFailed(f"{' '.join(cmd)} exited {p.returncode}: {stderr.strip()[-2000:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, stdout)


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
KILN_SRC: Path | None = None  # a tree holding another kiln/ to benchmark (default: the installed one)


def kiln(*args: str) -> tuple[Run, dict[str, object]]:
    env = {"PYTHONPATH": str(KILN_SRC)} if KILN_SRC else None
    r = run([sys.executable, str(Path(__file__).with_name("kiln_op.py")), *args], env=env)
    return r, json.loads(r.stdout.strip().splitlines()[-1])


# --- restic --------------------------------------------------------------------------------
def restic_env(state: Path) -> dict[str, str]:
    return {"RESTIC_REPOSITORY": str(state / "repo"), "RESTIC_PASSWORD": "kiln-bench",
            "RESTIC_CACHE_DIR": str(state / "cache"), "RESTIC_PROGRESS_FPS": "0.1"}


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
    return {"BORG_REPO": str(state / "repo"), "BORG_BASE_DIR": str(state / "home"),
            "BORG_CACHE_DIR": str(state / "cache"), "BORG_CONFIG_DIR": str(state / "config"),
            "BORG_SECURITY_DIR": str(state / "security"),
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}


def borg(state: Path, *args: str, cwd: Path | None = None) -> Run:
    return run(["borg", *args], env=borg_env(state), cwd=cwd)
