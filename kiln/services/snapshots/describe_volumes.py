"""DescribeVolumes: the caller's volumes in its region, EC2's filters, pages.

A volume count per account is small next to images, so the filters run on the records (with
EC2's ``*``/``?`` wildcards) instead of in SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiln import errors
from kiln.catalog.records import Filter, VolumeRecord
from kiln.catalog.wildcard import matches_text
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.snapshots.volumes import describe_volume_records
from kiln.services.validate import (
    check_filters,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)


def _b(v: bool | None) -> str:
    return "true" if v else "false"


#: filter name -> the text values of a volume it matches against.
FIELDS: dict[str, Callable[[VolumeRecord], list[str]]] = {
    "availability-zone": lambda v: [v.availability_zone],
    "create-time": lambda v: [v.create_time],
    "encrypted": lambda v: [_b(v.encrypted)],
    "fast-restored": lambda v: ["false"],
    "multi-attach-enabled": lambda v: [_b(v.multi_attach_enabled)],
    "size": lambda v: [str(v.size)],
    "snapshot-id": lambda v: [v.snapshot_id or ""],
    "status": lambda v: [v.state],
    "volume-id": lambda v: [v.volume_id],
    "volume-type": lambda v: [v.volume_type],
    "attachment.attach-time": lambda v: [v.attach_time] if v.attach_time else [],
    "attachment.delete-on-termination": lambda v: (
        [_b(v.delete_on_termination)] if v.instance_id else []
    ),
    "attachment.device": lambda v: [v.device] if v.device else [],
    "attachment.instance-id": lambda v: [v.instance_id] if v.instance_id else [],
    "attachment.status": lambda v: ["attached"] if v.instance_id else [],
    "tag-key": lambda v: [t.key for t in v.tags],
    "tag-value": lambda v: [t.value for t in v.tags],
}
KINDS = {name: "str" for name in FIELDS} | {
    "encrypted": "bool",
    "multi-attach-enabled": "bool",
    "fast-restored": "bool",
    "size": "int",
}


@dataclass(frozen=True, slots=True)
class DescribeVolumesRequest:
    volume_ids: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DescribeVolumesResult:
    volumes: tuple[VolumeRecord, ...]
    next_token: str | None


def _values(v: VolumeRecord, name: str) -> list[str]:
    if name.startswith("tag:"):
        return [t.value for t in v.tags if t.key == name[4:]]
    return FIELDS[name](v)


def describe_volumes(
    services: Services, caller: Caller, req: DescribeVolumesRequest
) -> DescribeVolumesResult:
    checked = check_filters(req.filters, KINDS)
    check_max_results(req.max_results, 5, 500)
    if req.max_results is not None and req.volume_ids:
        raise KilnError(
            errors.InvalidParameterCombination,
            "The parameter VolumeIds cannot be used with the parameter maxResults",
        )
    dry_run(req.dry_run)
    fingerprint = [
        "DescribeVolumes",
        caller.account_id,
        caller.region,
        req.volume_ids,
        [(f.name, f.values) for f in checked],
    ]
    after = decode_token(req.next_token, fingerprint)
    found = describe_volume_records(services, caller, req.volume_ids)
    for f in checked:
        found = [
            v
            for v in found
            if any(matches_text(x, pat) for x in _values(v, f.name) for pat in f.values)
        ]
    if after is not None:
        found = [v for v in found if v.volume_id > str(after)]
    token = None
    if req.max_results and len(found) > req.max_results:
        found = found[: req.max_results]
        token = encode_token(found[-1].volume_id, fingerprint)
    return DescribeVolumesResult(tuple(found), token)
