"""Block device mappings of RegisterImage: every field checked, defaults filled from snapshots."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import BlockDeviceRecord, EbsRecord, SnapshotRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.validate import id_prefix

DEVICE_RE = re.compile(
    r"^(/dev/)?(sd[a-z]{1,2}[0-9]{0,2}|xvd[a-z]{1,2}[0-9]{0,2}|hd[a-z][0-9]?"
    r"|vd[a-z]{1,2}[0-9]{0,2}|nvme[0-9]{1,2}n[0-9]{1,2}(p[0-9]{1,2})?)$"
)
VIRTUAL_RE = re.compile(r"^ephemeral([0-9]|1[0-9]|2[0-3])$")
VOLUME_TYPES = ("standard", "io1", "io2", "gp2", "gp3", "sc1", "st1")
# (min, max) GiB per volume type; iops ranges for the types that take iops.
SIZE_LIMITS = {
    "standard": (1, 1024),
    "gp2": (1, 16384),
    "gp3": (1, 16384),
    "io1": (4, 16384),
    "io2": (4, 65536),
    "st1": (125, 16384),
    "sc1": (125, 16384),
}
IOPS_LIMITS = {"gp3": (3000, 80000), "io1": (100, 64000), "io2": (100, 256000)}
THROUGHPUT_LIMITS = (125, 2000)
INIT_RATE_LIMITS = (100, 300)
DEFAULT_VOLUME_TYPE = "gp2"


def _bad(message: str) -> KilnError:
    return KilnError(errors.InvalidBlockDeviceMapping, message)


def _combo(message: str) -> KilnError:
    return KilnError(errors.InvalidParameterCombination, message)


def check_device_name(name: str, what: str = "device name") -> str:
    if not DEVICE_RE.match(name):
        raise KilnError(errors.InvalidParameterValue, f"Invalid {what} {name}")
    return name


def check_block_devices(
    tx: Tx, caller: Caller, bdms: Sequence[BlockDeviceRecord], region_zones: Sequence[str]
) -> tuple[BlockDeviceRecord, ...]:
    """Validate every mapping and return them with EC2's defaults filled in."""
    seen: set[str] = set()
    out = []
    for bd in bdms:
        check_device_name(bd.device_name)
        norm = bd.device_name.removeprefix("/dev/")
        if norm in seen:
            raise _bad(
                f"The device '{bd.device_name}' is used in more than one block-device mapping"
            )
        seen.add(norm)
        kinds = sum([bd.ebs is not None, bd.virtual_name is not None, bd.no_device])
        if kinds != 1:
            raise _bad(
                f"The block device mapping for {bd.device_name} must specify exactly one "
                "of Ebs, VirtualName or NoDevice"
            )
        if bd.virtual_name is not None and not VIRTUAL_RE.match(bd.virtual_name):
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid virtual name {bd.virtual_name} (expecting ephemeral0-23)",
            )
        if bd.ebs is not None:
            bd = replace(bd, ebs=_check_ebs(tx, caller, bd.device_name, bd.ebs, region_zones))
        out.append(bd)
    return tuple(out)


def _snapshot(tx: Tx, caller: Caller, snapshot_id: str) -> SnapshotRecord:
    if id_prefix(snapshot_id) != "snap":
        raise KilnError(
            errors.InvalidSnapshotMalformed, f'Invalid id: "{snapshot_id}" (expecting "snap-...")'
        )
    snap = cat_snapshots.get_snapshot(tx, snapshot_id, caller.account_id)
    if (
        snap is None
        or snap.region != caller.region
        or not cat_snapshots.snapshot_visible(tx, snapshot_id, caller.account_id)
    ):
        raise KilnError(
            errors.InvalidSnapshotNotFound, f"The snapshot '{snapshot_id}' does not exist."
        )
    if snap.state != "completed":
        raise KilnError(
            errors.IncorrectState,
            f"Snapshot '{snapshot_id}' is in state '{snap.state}', not 'completed'.",
        )
    return snap


def _check_ebs(
    tx: Tx, caller: Caller, device: str, ebs: EbsRecord, zones: Sequence[str]
) -> EbsRecord:
    snap = _snapshot(tx, caller, ebs.snapshot_id) if ebs.snapshot_id else None
    vtype = ebs.volume_type or DEFAULT_VOLUME_TYPE
    if vtype not in VOLUME_TYPES:
        raise KilnError(errors.InvalidParameterValue, f"Invalid volume type {vtype}")
    size = ebs.volume_size if ebs.volume_size is not None else (snap.volume_size if snap else None)
    if size is None:
        raise _bad(f"The block device mapping for {device} needs a SnapshotId or a VolumeSize")
    lo, hi = SIZE_LIMITS[vtype]
    if not lo <= size <= hi:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Volume of type {vtype} must be between {lo} and {hi} GiB; got {size}",
        )
    if snap is not None and size < snap.volume_size:
        raise _bad(
            f"Volume of size {size}GB is smaller than snapshot '{snap.snapshot_id}', "
            f"expect size >= {snap.volume_size}GB"
        )
    if ebs.iops is not None:
        if vtype not in IOPS_LIMITS:
            raise _combo(f"The parameter iops is not supported for {vtype} volumes.")
        ilo, ihi = IOPS_LIMITS[vtype]
        if not ilo <= ebs.iops <= ihi:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Iops for {vtype} must be between {ilo} and {ihi}; got {ebs.iops}",
            )
    elif vtype in ("io1", "io2"):
        raise KilnError(
            errors.MissingParameter, f"The parameter iops must be specified for {vtype} volumes."
        )
    if ebs.throughput is not None:
        if vtype != "gp3":
            raise _combo(f"The parameter throughput is not supported for {vtype} volumes.")
        if not THROUGHPUT_LIMITS[0] <= ebs.throughput <= THROUGHPUT_LIMITS[1]:
            raise KilnError(
                errors.InvalidParameterValue,
                f"Throughput must be between {THROUGHPUT_LIMITS[0]} and "
                f"{THROUGHPUT_LIMITS[1]} MiB/s; got {ebs.throughput}",
            )
    encrypted = ebs.encrypted
    if snap is not None and snap.encrypted and encrypted is False:
        raise _combo(
            f"Snapshot '{snap.snapshot_id}' is encrypted; the mapping for {device} "
            "cannot set Encrypted=false"
        )
    if encrypted is None and snap is not None:
        encrypted = snap.encrypted
    kms = ebs.kms_key_id
    if kms is not None and not encrypted:
        raise _combo("The parameter KmsKeyId requires Encrypted=true")
    if kms is None and snap is not None and snap.encrypted:
        kms = snap.kms_key_id
    if ebs.availability_zone is not None and ebs.availability_zone not in zones:
        raise KilnError(
            errors.InvalidParameterValue, f"Invalid availability zone: [{ebs.availability_zone}]"
        )
    if ebs.volume_initialization_rate is not None:
        rlo, rhi = INIT_RATE_LIMITS
        if snap is None:
            raise _combo("VolumeInitializationRate requires a SnapshotId")
        if not rlo <= ebs.volume_initialization_rate <= rhi:
            raise KilnError(
                errors.InvalidParameterValue,
                f"VolumeInitializationRate must be between {rlo} and {rhi} MiB/s",
            )
    if ebs.ebs_card_index is not None and ebs.ebs_card_index < 0:
        raise KilnError(errors.InvalidParameterValue, "EbsCardIndex must not be negative")
    if ebs.outpost_arn is not None and not ebs.outpost_arn.startswith("arn:"):
        raise KilnError(errors.InvalidParameterValue, f"Invalid OutpostArn {ebs.outpost_arn}")
    return replace(
        ebs,
        volume_size=size,
        volume_type=vtype,
        encrypted=bool(encrypted),
        kms_key_id=kms,
        delete_on_termination=(
            True if ebs.delete_on_termination is None else ebs.delete_on_termination
        ),
    )
