"""Write disks out: convert_raw (export a raw file to another format) and create_overlay."""

from __future__ import annotations

import logging
import os
import re
import select
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kiln import errors
from kiln.disks import qemu_img
from kiln.errors import KilnError

log = logging.getLogger(__name__)

EXPORT_FORMATS: tuple[str, ...] = ("raw", "qcow2", "vmdk", "vpc", "vhdx")

# Creation options that keep the round trip bit-exact and the output sparse.
_CREATE_OPTIONS: dict[str, list[str]] = {
    "raw": [],
    "qcow2": [],
    "vmdk": ["-o", "subformat=monolithicSparse"],
    # force_size: keep the exact virtual size instead of rounding to a CHS geometry.
    "vpc": ["-o", "subformat=dynamic,force_size=on"],
    "vhdx": ["-o", "subformat=dynamic"],
}
_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")

Progress = Callable[[int, int], None]


def convert_raw(src_raw: Path, out: Path, fmt: str, progress: Progress | None = None) -> None:
    """Write the raw disk ``src_raw`` to ``out`` in ``fmt`` (one of EXPORT_FORMATS).

    Bit-exact and sparse; ``progress(done_bytes, total_bytes)`` is called as qemu-img reports.
    On failure no partial ``out`` is left behind.
    """
    name = "vpc" if fmt.lower() == "vhd" else fmt.lower()
    if name not in EXPORT_FORMATS:
        raise KilnError(
            errors.InvalidParameterValue,
            f"unsupported export format {fmt!r} (supported: {', '.join(EXPORT_FORMATS)}, vhd)",
        )
    src_raw, out = Path(src_raw), Path(out)
    total = src_raw.stat().st_size
    args = [
        "convert",
        "-p",
        "-f",
        "raw",
        "-O",
        name,
        *_CREATE_OPTIONS[name],
        "--",
        str(src_raw),
        str(out),
    ]
    try:
        _run_with_progress(args, total, progress, what=f"cannot write {name} image {out.name}")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(total, total)


def create_overlay(
    base: Path, overlay: Path, base_format: str = "raw", cluster_size: int | None = None
) -> None:
    """Create a qcow2 ``overlay`` backed by the trusted Kiln-made ``base`` (absolute path stored)."""
    base = Path(base).resolve()
    args = ["create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format]
    if cluster_size is not None:
        args += ["-o", f"cluster_size={int(cluster_size)}"]
    qemu_img.run(
        qemu_img.QEMU_IMG,
        [*args, "--", str(overlay)],
        timeout=qemu_img.CREATE_TIMEOUT,
        code=errors.InternalError,
        what=f"cannot create overlay {Path(overlay).name}",
    )
    log.debug("overlay %s over %s (%s)", overlay, base, base_format)


def _run_with_progress(
    args: list[str], total: int, progress: Progress | None, *, what: str
) -> None:
    argv = [qemu_img.find_tool(qemu_img.QEMU_IMG), *args]
    log.debug("run %s", argv)
    deadline = time.monotonic() + qemu_img.CONVERT_TIMEOUT
    with (
        tempfile.TemporaryFile() as err,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=qemu_img.tool_env()) as proc,
    ):
        assert proc.stdout is not None
        try:
            _follow_progress(proc.stdout.fileno(), deadline, total, progress, what)
        except BaseException:
            proc.kill()
            raise
        proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    log.debug("qemu-img exited %d; stderr=%r", proc.returncode, stderr[-2000:])
    if proc.returncode != 0:
        code = errors.StoreFull if "No space left on device" in stderr else errors.InternalError
        raise KilnError(code, f"{what}: {qemu_img.last_error_line(stderr)}")


def _follow_progress(
    fd: int, deadline: float, total: int, progress: Progress | None, what: str
) -> None:
    """Read qemu-img's ``(NN.NN/100%)`` lines from ``fd`` until EOF, reporting bytes done."""
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KilnError(errors.InternalError, f"{what}: qemu-img timed out")
        ready, _, _ = select.select([fd], [], [], min(remaining, 5.0))
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        if progress is None:
            continue
        for line in lines:
            m = _PROGRESS_RE.search(line)
            if m:
                progress(min(total, int(float(m.group(1)) / 100 * total)), total)
