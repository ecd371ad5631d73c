"""Disk images over the real qemu-img: inspect and refuse unsafe images, find data, convert.

See docs/disks.md for the contract and the safety rules.
"""

from kiln.disks.blockmap import merge_extents
from kiln.disks.convert import EXPORT_FORMATS, convert_raw, create_overlay
from kiln.disks.extents import data_extents, overlay_changed_extents
from kiln.disks.inspect import DiskInfo, inspect_disk, raw_disk
from kiln.disks.probe import SUPPORTED_IMPORT_FORMATS
from kiln.disks.raw_source import RawSource, open_overlay_changes, open_raw_source

__all__ = [
    "EXPORT_FORMATS",
    "SUPPORTED_IMPORT_FORMATS",
    "DiskInfo",
    "RawSource",
    "convert_raw",
    "create_overlay",
    "data_extents",
    "inspect_disk",
    "merge_extents",
    "open_overlay_changes",
    "open_raw_source",
    "overlay_changed_extents",
    "raw_disk",
]
