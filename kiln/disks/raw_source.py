"""open_raw_source: a guest disk as a plain raw file, whatever its container format.

raw images are used in place. Other formats are converted once with ``qemu-img convert -O raw``
into a sparse temporary file (holes stay holes, so a mostly-empty disk costs only its data), which
is removed on exit. See docs/disks.md for why this beats an NBD client here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.disks import qemu_img
from kiln.disks.blockmap import MapEntry, qemu_map
from kiln.disks.inspect import DiskInfo
from kiln.errors import KilnError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawSource:
    """A raw view of a guest disk: byte X of ``path`` (and of ``fd``) is byte X of the disk."""

    path: Path
    fd: int
    size: int  # the guest disk size (DiskInfo.virtual_size)
    temporary: bool  # True when ``path`` is a converted copy that is deleted on exit

    def pread(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (short only at the end of the disk)."""
        return os.pread(self.fd, length, offset)


@contextmanager
def open_raw_source(info: DiskInfo, tmp_dir: Path) -> Iterator[RawSource]:
    """Yield a RawSource for ``info``; a converted temporary file lives in ``tmp_dir``."""
    if info.format == "raw":
        fd = _open(info.path)
        try:
            yield RawSource(info.path, fd, info.virtual_size, temporary=False)
        finally:
            os.close(fd)
        return
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="kiln-raw-", suffix=".raw", dir=tmp_dir)
    os.close(handle)
    tmp = Path(name)
    try:
        qemu_img.run(
            qemu_img.QEMU_IMG,
            [
                "convert",
                "--force-share",
                "-f",
                info.format,
                "-O",
                "raw",
                "-W",
                "--",
                str(info.path),
                str(tmp),
            ],
            timeout=qemu_img.CONVERT_TIMEOUT,
            code=errors.InvalidDiskImage,
            what=f"{info.path.name}: cannot read {info.format} image",
        )
        size = tmp.stat().st_size
        if size != info.virtual_size:
            raise KilnError(
                errors.InvalidDiskImage,
                f"{info.path.name}: converted size {size} differs from the "
                f"image's virtual size {info.virtual_size}",
            )
        fd = _open(tmp)
        try:
            log.debug("raw view of %s at %s", info.path, tmp)
            yield RawSource(tmp, fd, info.virtual_size, temporary=True)
        finally:
            os.close(fd)
    finally:
        tmp.unlink(missing_ok=True)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise KilnError(
            errors.InvalidParameterValue, f"cannot open disk image {path}: {exc.strerror}"
        ) from exc


@contextmanager
def open_overlay_changes(overlay: Path, tmp_dir: Path) -> Iterator[RawSource]:
    """A RawSource holding what a Kiln overlay's guest wrote, at guest offsets.

    Only the ranges of ``overlay_changed_extents(overlay)`` are meaningful; everything else
    reads as zeros. Data clusters are copied straight from the overlay file at the host offsets
    ``qemu-img map`` reports (``os.copy_file_range``), so the cost is the changed bytes, not the
    disk size. A cluster QEMU gives no host offset for (compressed) is read with qemu-img
    convert of the whole overlay as a fallback. The overlay must not be in use by a running VM.
    """
    overlay = Path(overlay)
    entries = qemu_map(overlay, "qcow2")
    size = max((e.start + e.length for e in entries), default=0)
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="kiln-changes-", suffix=".raw", dir=tmp_dir)
    tmp = Path(name)
    try:
        os.ftruncate(handle, size)
        top = [e for e in entries if e.depth == 0 and e.present and e.data and not e.zero]
        if any(e.host_offset is None for e in top):
            os.close(handle)
            handle = -1
            qemu_img.run(
                qemu_img.QEMU_IMG,
                ["convert", "-f", "qcow2", "-O", "raw", "--", str(overlay), str(tmp)],
                timeout=qemu_img.CONVERT_TIMEOUT,
                code=errors.InternalError,
                what=f"cannot read overlay {overlay.name}",
            )
        else:
            _copy_ranges(overlay, handle, top)
        fd = _open(tmp)
        try:
            yield RawSource(tmp, fd, size, temporary=True)
        finally:
            os.close(fd)
    finally:
        if handle >= 0:
            os.close(handle)
        tmp.unlink(missing_ok=True)


def _copy_ranges(overlay: Path, out_fd: int, entries: list[MapEntry]) -> None:
    src = _open(overlay)
    try:
        for e in entries:
            assert e.host_offset is not None
            done = 0
            while done < e.length:
                n = os.copy_file_range(
                    src, out_fd, e.length - done, e.host_offset + done, e.start + done
                )
                if n == 0:
                    raise KilnError(
                        errors.InternalError, f"overlay {overlay.name} ends inside a data cluster"
                    )
                done += n
    finally:
        os.close(src)
