"""Instance-store bundles: the Kiln bundle manifest that RegisterImage's ImageLocation names.

EC2 reads ``bucket/prefix/image.manifest.xml`` from S3. Kiln reads the same shape of location
as a path under ``DATA_DIR/regions/REGION/bundles/`` holding a JSON manifest whose disk is a
snapshot in that region's store (docs/api.md#bundles):

    {"format": "kiln-bundle/1", "image_type": "machine", "architecture": "x86_64",
     "image": {"snapshot_id": "snap-0123456789abcdef0"},
     "kernel_id": null, "ramdisk_id": null}

A kernel bundle (``"image_type": "kernel"``) may carry the command line its kernel boots with,
``"cmdline": "root=/dev/vda2 rw console=ttyS0,115200 nokaslr"`` (docs/instances.md#paravirtual).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.errors import KilnError
from kiln.services.context import Services

BUNDLE_FORMAT = "kiln-bundle/1"
IMAGE_TYPES = ("machine", "kernel", "ramdisk")
ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_CMDLINE = 2047  # x86's COMMAND_LINE_SIZE, less its NUL


@dataclass(frozen=True, slots=True)
class Bundle:
    location: str
    image_type: str
    architecture: str | None
    snapshot_id: str
    kernel_id: str | None
    ramdisk_id: str | None
    cmdline: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "format": BUNDLE_FORMAT,
            "location": self.location,
            "image_type": self.image_type,
            "architecture": self.architecture,
            "image": {"snapshot_id": self.snapshot_id},
            "kernel_id": self.kernel_id,
            "ramdisk_id": self.ramdisk_id,
            **({"cmdline": self.cmdline} if self.cmdline is not None else {}),
        }


def _invalid(location: str, why: str) -> KilnError:
    return KilnError(errors.InvalidParameterValue, f"Invalid ImageLocation '{location}': {why}")


def resolve(root: Path, location: str) -> Path:
    rel = Path(location)
    if rel.is_absolute() or ".." in rel.parts or not location.strip("/"):
        raise _invalid(location, "must be a relative bucket/key path without '..'")
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise _invalid(location, "outside the bundle directory")
    return path


def read_bundle(services: Services, region: str, location: str) -> Bundle:
    """Parse and check the manifest at ``location``; its disk must be in the region's store."""
    path = resolve(services.bundles_dir(region), location)
    try:
        raw = path.read_bytes()[: MAX_MANIFEST_BYTES + 1]
    except OSError:
        raise _invalid(location, "no bundle manifest there") from None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"format must be {BUNDLE_FORMAT!r}")
        image = doc["image"]
        snapshot_id = image["snapshot_id"]
        if not isinstance(snapshot_id, str):
            raise ValueError("image.snapshot_id must be a string")
        image_type = doc.get("image_type", "machine")
        if image_type not in IMAGE_TYPES:
            raise ValueError(f"image_type must be one of {IMAGE_TYPES}")
        arch = doc.get("architecture")
        if arch is not None and arch not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        cmdline = doc.get("cmdline")
        if cmdline is not None and (not isinstance(cmdline, str) or len(cmdline) > MAX_CMDLINE):
            raise ValueError(f"cmdline must be a string of at most {MAX_CMDLINE} characters")
    except (ValueError, KeyError, TypeError) as e:
        raise _invalid(location, f"not a Kiln bundle manifest ({e})") from None
    if not services.stores[region].has(snapshot_id):
        raise _invalid(location, f"its disk {snapshot_id} is not in the {region} store")
    return Bundle(
        location,
        image_type,
        arch,
        snapshot_id,
        doc.get("kernel_id"),
        doc.get("ramdisk_id"),
        cmdline,
    )
