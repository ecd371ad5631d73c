"""Instance ids and who may see an instance (its owner, in its region), and the view every
instance answer is built from: the record, its attached volumes and its image's kernel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Tx
from kiln.catalog import images as cat_images
from kiln.catalog import instances as cat
from kiln.catalog.instances import InstanceRecord
from kiln.catalog.records import VolumeRecord
from kiln.errors import KilnError
from kiln.services.context import Caller
from kiln.services.validate import id_prefix


@dataclass(frozen=True, slots=True)
class InstanceView:
    instance: InstanceRecord
    volumes: tuple[VolumeRecord, ...]
    kernel_id: str | None = None  # its image's (paravirtual images; docs/instances.md)
    ramdisk_id: str | None = None


def check_instance_id(value: str) -> str:
    if id_prefix(value) != "i":
        raise KilnError(
            errors.InvalidInstanceIDMalformed, f'Invalid id: "{value}" (expecting "i-...")'
        )
    return value


def not_found(instance_ids: Sequence[str]) -> KilnError:
    if len(instance_ids) == 1:
        return KilnError(
            errors.InvalidInstanceIDNotFound, f"The instance ID '{instance_ids[0]}' does not exist"
        )
    return KilnError(
        errors.InvalidInstanceIDNotFound,
        f"The instance IDs '{', '.join(instance_ids)}' do not exist",
    )


def owned_instances(
    tx: Tx, caller: Caller, instance_ids: Sequence[str], hidden_before: str | None = None
) -> list[InstanceRecord]:
    """The caller's instances with these ids in its region, in order; InvalidInstanceID.Malformed
    for a malformed id, .NotFound (naming every missing id) if any is not the caller's."""
    if not instance_ids:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter InstanceId"
        )
    for iid in instance_ids:
        check_instance_id(iid)
    ids = list(dict.fromkeys(instance_ids))
    found = set(
        cat.query_instance_ids(
            tx, caller.region, caller.account_id, ids, hidden_before=hidden_before
        )
    )
    missing = [i for i in ids if i not in found]
    if missing:
        raise not_found(missing)
    return cat.get_instances(tx, ids, caller.account_id)


def views(tx: Tx, records: Sequence[InstanceRecord]) -> list[InstanceView]:
    vols = cat.volumes_of_instances(tx, [r.instance_id for r in records])
    boot = cat_images.boot_images(tx, {r.image_id for r in records})
    return [
        InstanceView(
            r,
            tuple(vols.get(r.instance_id, ())),
            boot[r.image_id].kernel_id if r.image_id in boot else None,
            boot[r.image_id].ramdisk_id if r.image_id in boot else None,
        )
        for r in records
    ]
