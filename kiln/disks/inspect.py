"""inspect_disk: what a disk image is, and whether Kiln may safely read it.

A file declared raw is not inspected beyond the raw rule (:func:`raw_disk`): its bytes are
data. For any other file, the order of checks (each refuses before the next step could open
anything more):
1. our own magic-number sniffing (kiln.disks.probe) — missing, unsupported, obviously unsafe;
2. ``qemu-img info -U -f FMT --output=json`` — QEMU never probes, never opens a backing chain;
   its JSON is checked again for a backing file, a data file and vmdk extents in other files;
3. ``qemu-img check`` (qcow2, vmdk, vhdx) and ``qemu-img map`` — corrupt or truncated images.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.disks import qemu_img
from kiln.disks.blockmap import qemu_map
from kiln.disks.probe import SECTOR, normalize_format, regular_file_size, sniff
from kiln.errors import KilnError

log = logging.getLogger(__name__)

_CHECKABLE = ("qcow2", "vmdk", "vhdx")
_CHECK_OK = (0, 3, 63)  # 0 clean, 3 leaked clusters only, 63 format has no check


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """A disk image that passed inspection. ``virtual_size`` is the guest disk size in bytes."""

    path: Path
    format: str
    virtual_size: int
    actual_size: int
    cluster_size: int | None


def inspect_disk(path: Path, fmt: str | None = None) -> DiskInfo:
    """Identify and validate a disk image; raises KilnError (see module docstring) if refused.

    ``fmt="raw"`` (declared by the caller, or a file Kiln made itself) is :func:`raw_disk`: the
    bytes are data, never sniffed, so a raw disk that holds a qcow2 or LUKS header is imported
    as it is. Without ``fmt`` the format is detected and the sniff's refusals apply.
    """
    path = Path(path)
    declared = normalize_format(fmt) if fmt is not None else None
    if declared == "raw":
        return raw_disk(path)
    sniffed = sniff(path)
    name = declared or sniffed.format
    if name == "raw":
        return _inspect_raw(path, sniffed.size)
    if sniffed.format not in ("raw", name):
        log.debug("%s looks like %s but %s was requested", path, sniffed.format, name)
    info = _qemu_info(path, name)
    _refuse_external_files(path, info)
    virtual_size = _int(info.get("virtual-size"))
    if virtual_size <= 0:
        raise KilnError(errors.InvalidDiskImage, f"{path.name}: {name} image has no virtual size")
    if info.get("encrypted"):
        raise KilnError(errors.InvalidDiskImage, f"{path.name}: encrypted images are not supported")
    if name in _CHECKABLE:
        _check(path, name, sniffed.size, _int(info.get("cluster-size")))
    disk = DiskInfo(
        path=path,
        format=name,
        virtual_size=virtual_size,
        actual_size=_int(info.get("actual-size")),
        cluster_size=_int(info.get("cluster-size")) or None,
    )
    _check_map_within_file(disk, sniffed.size)
    log.debug("inspected %s", disk)
    return disk


def raw_disk(path: Path) -> DiskInfo:
    """A disk known to be raw: a caller declared it (``Format=RAW``), or Kiln made it (a volume
    composed for the store, a restored base). Its content is guest data and is never read
    here: only the raw rule applies (a regular file of whole 512-byte sectors). Reading raw
    never opens another file, whatever the bytes say."""
    path = Path(path)
    return _inspect_raw(path, regular_file_size(path))


def _inspect_raw(path: Path, size: int) -> DiskInfo:
    # qemu-img would call any file "raw"; a real disk is a whole number of 512-byte sectors.
    if size == 0:
        raise KilnError(errors.InvalidDiskImage, f"{path.name}: empty file is not a disk image")
    if size % SECTOR:
        raise KilnError(
            errors.InvalidDiskImage,
            f"{path.name}: not a disk image (unrecognised format, and {size} bytes "
            f"is not a whole number of {SECTOR}-byte sectors for a raw disk)",
        )
    st = path.stat()
    return DiskInfo(
        path=path,
        format="raw",
        virtual_size=size,
        actual_size=st.st_blocks * 512,
        cluster_size=None,
    )


def _qemu_info(path: Path, fmt: str) -> dict[str, object]:
    doc = qemu_img.run_json(
        qemu_img.QEMU_IMG,
        ["info", "--force-share", "--output=json", "-f", fmt, "--", str(path)],
        timeout=qemu_img.INFO_TIMEOUT,
        code=errors.InvalidDiskImage,
        what=f"{path.name}: not a valid {fmt} image",
    )
    if not isinstance(doc, dict):
        raise KilnError(errors.InvalidDiskImage, f"{path.name}: qemu-img info gave no details")
    return doc


def _refuse_external_files(path: Path, info: dict[str, object]) -> None:
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise KilnError(
            errors.UnsafeDiskImage,
            f"{path.name}: image has a backing file ({info.get('backing-filename')}); "
            "refused because it would read another host file (flatten it first)",
        )
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    if not isinstance(data, dict):
        return
    if data.get("data-file"):
        raise KilnError(
            errors.UnsafeDiskImage,
            f"{path.name}: image keeps its data in an external data file "
            f"({data.get('data-file')}); refused because it would read another host file",
        )
    extents = data.get("extents")
    if isinstance(extents, list):
        for extent in extents:
            name = extent.get("filename") if isinstance(extent, dict) else None
            if not isinstance(name, str) or not _same_file(path, name):
                raise KilnError(
                    errors.UnsafeDiskImage,
                    f"{path.name}: vmdk extent is another file ({name}); refused "
                    "because it would read another host file",
                )


def _same_file(path: Path, other: str) -> bool:
    candidate = Path(other) if os.path.isabs(other) else path.parent / other
    try:
        return os.path.samefile(path, candidate)
    except OSError:
        return False


def _check(path: Path, fmt: str, file_size: int, cluster_size: int) -> None:
    done = qemu_img.run(
        qemu_img.QEMU_IMG,
        ["check", "--force-share", "--output=json", "-f", fmt, "--", str(path)],
        timeout=qemu_img.CHECK_TIMEOUT,
        code=errors.InvalidDiskImage,
        what=f"{path.name}: corrupt {fmt} image",
        ok_codes=(*_CHECK_OK, 1, 2),
    )
    if done.returncode == 63:  # this format has no consistency check
        return
    try:
        report = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        report = {}
    report = report if isinstance(report, dict) else {}
    problems = [ln.strip() for ln in done.stderr.splitlines() if ln.strip().startswith("ERROR")]
    detail = problems[0] if problems else qemu_img.last_error_line(done.stderr)
    if (
        done.returncode in (1, 2)
        or _int(report.get("corruptions"))
        or _int(report.get("check-errors"))
    ):
        raise KilnError(
            errors.InvalidDiskImage, f"{path.name}: corrupt or truncated {fmt} image ({detail})"
        )
    # image-end-offset counts whole clusters; qemu-img itself leaves the last one partial.
    end = _int(report.get("image-end-offset"))
    cluster = max(cluster_size, 1)
    if end > -(-file_size // cluster) * cluster:
        raise KilnError(
            errors.InvalidDiskImage,
            f"{path.name}: truncated {fmt} image (its metadata reaches byte {end}, "
            f"the file has {file_size} bytes)",
        )


def _check_map_within_file(disk: DiskInfo, file_size: int) -> None:
    """A truncated image maps data to host offsets past the end of the file: refuse it."""
    for entry in qemu_map(disk.path, disk.format):
        if (
            entry.data
            and entry.host_offset is not None
            and entry.host_offset + entry.length > file_size
        ):
            raise KilnError(
                errors.InvalidDiskImage,
                f"{disk.path.name}: truncated {disk.format} image (data at byte "
                f"{entry.host_offset} lies past the end of the {file_size}-byte file)",
            )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
