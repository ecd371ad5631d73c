"""The document an image signature covers, and its canonical encoding: the contract in
docs/signing.md#the-signed-document. Changing anything here changes every digest, so a new
encoding gets a new ``FORMAT`` and verification keeps reading the old one.

The document names the image (id, region, owner), every field that decides what a launch
boots (architecture, boot mode, root device, kernel and ramdisk, block device mappings with
their snapshot ids, ...) and, for every snapshot the image launches from, the SHA-256 of its
manifest object exactly as the region's store holds it (docs/storage-format.md#manifests).
Manifests are written once, so an untouched image keeps its digest for ever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.catalog.records import BlockDeviceRecord, ImageRecord

if TYPE_CHECKING:  # the store is handed in; only its methods are called
    from kiln.store import SnapshotStore

FORMAT = "kiln-image-signature/1"


def snapshot_ids(image: ImageRecord) -> list[str]:
    """Every snapshot a launch of ``image`` reads: its EBS mappings' and its bundle's."""
    ids = {bd.ebs.snapshot_id for bd in image.block_devices if bd.ebs and bd.ebs.snapshot_id}
    bundled = (image.bundle or {}).get("image", {}).get("snapshot_id")
    if bundled:
        ids.add(str(bundled))
    return sorted(ids)


def _mapping(bd: BlockDeviceRecord) -> dict[str, Any]:
    ebs = bd.ebs
    return {
        "DeviceName": bd.device_name,
        "VirtualName": bd.virtual_name,
        "NoDevice": bd.no_device,
        "Ebs": None
        if ebs is None
        else {
            "SnapshotId": ebs.snapshot_id,
            "VolumeSize": ebs.volume_size,
            "VolumeType": ebs.volume_type,
            "Iops": ebs.iops,
            "Throughput": ebs.throughput,
            "DeleteOnTermination": ebs.delete_on_termination,
            "Encrypted": ebs.encrypted,
            "KmsKeyId": ebs.kms_key_id,
        },
    }


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def image_fields(image: ImageRecord) -> dict[str, Any]:
    bundled = (image.bundle or {}).get("image", {}).get("snapshot_id")
    return {
        "ImageId": image.image_id,
        "Region": image.region,
        "OwnerId": image.owner_id,
        "ImageType": image.image_type,
        "Architecture": image.architecture,
        "Platform": image.platform,
        "RootDeviceName": image.root_device_name,
        "RootDeviceType": image.root_device_type,
        "VirtualizationType": image.virtualization_type,
        "BootMode": image.boot_mode,
        "KernelId": image.kernel_id,
        "RamdiskId": image.ramdisk_id,
        "EnaSupport": image.ena_support,
        "SriovNetSupport": image.sriov_net_support,
        "ImdsSupport": image.imds_support,
        "TpmSupport": image.tpm_support,
        "UefiDataSha256": _sha256(image.uefi_data),
        "BundleSnapshotId": bundled,
        "ProductCodes": sorted(p.product_code_id for p in image.product_codes),
    }


def manifest_entry(store: SnapshotStore, snapshot_id: str) -> dict[str, Any]:
    """``{"SnapshotId", "ManifestSha256", "ManifestSize"}``; a manifest the store lacks has
    ``ManifestSha256`` null (an image in that state cannot be signed, and fails verification)."""
    if not store.has(snapshot_id):
        return {"SnapshotId": snapshot_id, "ManifestSha256": None, "ManifestSize": None}
    blob = store.manifest_bytes(snapshot_id)
    return {
        "SnapshotId": snapshot_id,
        "ManifestSha256": hashlib.sha256(blob).hexdigest(),
        "ManifestSize": len(blob),
    }


def image_document(store: SnapshotStore, image: ImageRecord) -> dict[str, Any]:
    """The document of ``image`` now (``store``: the image's region's store)."""
    return {
        "Format": FORMAT,
        "Image": image_fields(image),
        "BlockDeviceMappings": [_mapping(bd) for bd in image.block_devices],
        "Snapshots": [manifest_entry(store, sid) for sid in snapshot_ids(image)],
    }


def canonical(document: Mapping[str, Any]) -> bytes:
    """JSON with sorted keys, no whitespace, ASCII only (non-ASCII as ``\\uXXXX``)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def digest(document_bytes: bytes) -> bytes:
    """What the ed25519 signature signs: the 32-byte SHA-256 of the canonical document."""
    return hashlib.sha256(document_bytes).digest()


def first_difference(signed: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """What changed between the signed document and the image's document now, in words."""
    signed_snaps = {s["SnapshotId"]: s for s in signed.get("Snapshots", [])}
    now_snaps = {s["SnapshotId"]: s for s in now.get("Snapshots", [])}
    for sid, entry in now_snaps.items():
        if entry["ManifestSha256"] is None:
            return f"the manifest of {sid} is missing from the store"
    for sid in sorted(signed_snaps.keys() | now_snaps.keys()):
        if sid not in now_snaps:
            return f"it no longer uses snapshot {sid}"
        if sid not in signed_snaps:
            return f"it now uses snapshot {sid}"
        if signed_snaps[sid] != now_snaps[sid]:
            return f"the manifest of {sid} differs"
    old_fields, new_fields = signed.get("Image", {}), now.get("Image", {})
    for name in sorted(old_fields.keys() | new_fields.keys()):
        if old_fields.get(name) != new_fields.get(name):
            return f"its {name} differs"
    if signed.get("BlockDeviceMappings") != now.get("BlockDeviceMappings"):
        return "its block device mappings differ"
    if signed.get("Format") != now.get("Format"):
        return f"it was signed as {signed.get('Format')}, not {FORMAT}"
    return "its signed document differs"
