"""RunInstances' block devices: the image's mappings with the request's overrides applied.

EC2 semantics: a request mapping naming a device the image maps changes that mapping
(``VolumeSize`` may only grow it, ``DeleteOnTermination`` and ``VolumeType`` replace); a new
device adds a volume (from a snapshot the caller may use, or empty with ``VolumeSize``);
``NoDevice`` drops an image mapping (never the root). Ephemeral (``VirtualName``) mappings are
accepted and ignored: Kiln instances have no instance-store volumes besides an instance-store
root. The image's own snapshots need no permission of the caller: the launch permission covers
them, as on EC2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import snapshots as cat_snapshots
from kiln.catalog.records import BlockDeviceRecord, ImageRecord, KmsKeyRecord, SnapshotRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.images.block_devices import DEFAULT_VOLUME_TYPE, SIZE_LIMITS, check_device_name
from kiln.services.keys.kms_state import key_arn
from kiln.services.validate import id_prefix

MAX_VOLUMES = 8


@dataclass(frozen=True, slots=True)
class PlannedVolume:
    device: str
    snapshot_id: str | None
    size_gib: int
    volume_type: str
    delete_on_termination: bool
    encrypted: bool
    kms_key_id: str | None
    iops: int | None = None
    throughput: int | None = None


def _bad(message: str) -> KilnError:
    return KilnError(errors.InvalidBlockDeviceMapping, message)


def _norm(device: str) -> str:
    return device.removeprefix("/dev/")


def _snapshot(tx: Tx, caller: Caller, snapshot_id: str, image_owned: bool) -> SnapshotRecord:
    if id_prefix(snapshot_id) != "snap":
        raise KilnError(
            errors.InvalidSnapshotMalformed, f'Invalid id: "{snapshot_id}" (expecting "snap-...")'
        )
    snap = cat_snapshots.get_snapshot(tx, snapshot_id, caller.account_id)
    visible = (
        snap is not None
        and snap.region == caller.region
        and (image_owned or cat_snapshots.snapshot_visible(tx, snapshot_id, caller.account_id))
    )
    if snap is None or not visible:
        raise KilnError(
            errors.InvalidSnapshotNotFound, f"The snapshot '{snapshot_id}' does not exist."
        )
    if snap.state != "completed":
        raise KilnError(
            errors.IncorrectState,
            f"Snapshot '{snapshot_id}' is in state '{snap.state}', not 'completed'.",
        )
    return snap


def _size(device: str, vtype: str, size: int, snap: SnapshotRecord | None) -> int:
    lo, hi = SIZE_LIMITS.get(vtype, (1, 16384))
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
    return size


def plan_volumes(
    tx: Tx,
    caller: Caller,
    image: ImageRecord,
    overrides: Sequence[BlockDeviceRecord],
    by_default: KmsKeyRecord | None = None,
) -> list[PlannedVolume]:
    """The EBS volumes to create for one instance, root first. ``by_default``: the account's
    key under EBS encryption by default (kiln/services/keys/kms.py ``by_default_key``), which
    encrypts every volume whose snapshot does not."""
    root = _norm(image.root_device_name or "")
    mapped: dict[str, BlockDeviceRecord] = {
        _norm(bd.device_name): bd
        for bd in image.block_devices
        if bd.ebs is not None and not bd.no_device
    }
    added: dict[str, BlockDeviceRecord] = {}
    seen: set[str] = set()
    for bd in overrides:
        check_device_name(bd.device_name)
        dev = _norm(bd.device_name)
        if dev in seen:
            raise _bad(
                f"The device '{bd.device_name}' is used in more than one block-device mapping"
            )
        seen.add(dev)
        if bd.no_device:
            if dev == root:
                raise _bad(f"The root device {bd.device_name} cannot be suppressed with NoDevice")
            mapped.pop(dev, None)
        elif bd.ebs is not None:
            added[dev] = bd
    plans: list[PlannedVolume] = []
    for dev in dict.fromkeys([*mapped, *added]):
        base = mapped.get(dev)
        over = added.get(dev)
        b = base.ebs if base is not None else None
        o = over.ebs if over is not None else None
        if b is not None and o is not None and o.snapshot_id and o.snapshot_id != b.snapshot_id:
            raise _bad(f"The snapshot of {dev} is the image's and cannot be replaced")
        sid = (b.snapshot_id if b is not None else None) or (o.snapshot_id if o else None)
        snap = _snapshot(tx, caller, sid, image_owned=b is not None) if sid else None
        vtype = (o.volume_type if o and o.volume_type else None) or (
            b.volume_type if b and b.volume_type else DEFAULT_VOLUME_TYPE
        )
        if vtype not in SIZE_LIMITS:
            raise KilnError(errors.InvalidParameterValue, f"Invalid volume type {vtype}")
        size = (
            o.volume_size
            if o is not None and o.volume_size is not None
            else (
                b.volume_size
                if b is not None and b.volume_size is not None
                else (snap.volume_size if snap else None)
            )
        )
        if size is None:
            raise _bad(
                f"The block device mapping for /dev/{dev} needs a SnapshotId or a VolumeSize"
            )
        dot = (
            o.delete_on_termination
            if o and o.delete_on_termination is not None
            else (b.delete_on_termination if b and b.delete_on_termination is not None else True)
        )
        device = (
            base.device_name
            if base is not None
            else (over.device_name if over is not None else f"/dev/{dev}")
        )
        plans.append(
            PlannedVolume(
                device=device,
                snapshot_id=sid,
                size_gib=_size(dev, vtype, size, snap),
                volume_type=vtype,
                delete_on_termination=dot,
                encrypted=bool(snap and snap.encrypted) or by_default is not None,
                kms_key_id=snap.kms_key_id
                if snap and snap.encrypted
                else (key_arn(by_default) if by_default else None),
                iops=3000 if vtype == "gp3" else None,
                throughput=125 if vtype == "gp3" else None,
            )
        )
    if len(plans) > MAX_VOLUMES:
        raise _bad(f"Kiln attaches at most {MAX_VOLUMES} EBS volumes to an instance")
    plans.sort(key=lambda p: _norm(p.device) != root)
    return plans
