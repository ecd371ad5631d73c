"""Availability zones: three per region, ``<region>a`` to ``<region>c``, with EC2's zone ids
(``us-east-1a`` is ``use1-az1``); the checks every action that takes a zone makes, and
DescribeAvailabilityZones.

On EC2 the letter-to-id mapping differs per account; in Kiln it is the same for every account
(``a`` is ``az1``), so one zone id names one zone everywhere (docs/regions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.catalog.records import Filter
from kiln.errors import ErrorCode, KilnError
from kiln.services.context import Caller, Services
from kiln.services.row_filters import matches
from kiln.services.validate import check_filters, dry_run

ZONE_LETTERS = "abc"
_DIRECTIONS = {
    "east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Zone:
    name: str  # us-east-1a
    zone_id: str  # use1-az1
    region: str
    group: str  # the region: every Kiln zone is an availability zone of its region


def zones(region: str) -> tuple[str, ...]:
    """The zone names of ``region``, in order."""
    return tuple(f"{region}{letter}" for letter in ZONE_LETTERS)


def region_code(region: str) -> str:
    """EC2's short form of a region in zone ids: us-east-1 -> use1, ap-northeast-2 -> apne2,
    us-gov-west-1 -> usgw1."""
    parts = region.split("-")
    number = parts[-1] if parts[-1].isdigit() else ""
    words = parts[:-1] if number else parts
    head, rest = words[0], words[1:]
    short = "".join(_DIRECTIONS.get(w, w[:1]) for w in rest)
    return f"{head}{short}{number}"


def zone_records(region: str) -> tuple[Zone, ...]:
    code = region_code(region)
    return tuple(
        Zone(name, f"{code}-az{n}", region, region) for n, name in enumerate(zones(region), 1)
    )


def zone_id(region: str, zone: str) -> str:
    """The id of ``zone`` (``use1-az1``); the name itself for a zone Kiln does not have."""
    return next((z.zone_id for z in zone_records(region) if z.name == zone), zone)


def check_zone(region: str, zone: str, code: ErrorCode = errors.InvalidParameterValue) -> str:
    """``zone`` if it is a zone of ``region``; else EC2's answer: ``Invalid availability zone:
    [us-east-1z]`` (InvalidParameterValue; CreateVolume passes InvalidZone.NotFound)."""
    if zone in zones(region):
        return zone
    if code == errors.InvalidZoneNotFound:
        raise KilnError(code, f"The zone '{zone[:64]}' does not exist.")
    raise KilnError(code, f"Invalid availability zone: [{zone[:64]}]")


_FILTERS = {
    "zone-name": lambda z: [z.name],
    "zone-id": lambda z: [z.zone_id],
    "region-name": lambda z: [z.region],
    "state": lambda z: ["available"],
    "zone-type": lambda z: ["availability-zone"],
    "group-name": lambda z: [z.group],
    "opt-in-status": lambda z: ["opt-in-not-required"],
    "message": lambda z: [],
}


def describe_availability_zones(
    services: Services,
    caller: Caller,
    zone_names: Sequence[str] = (),
    zone_ids: Sequence[str] = (),
    filters: Sequence[Filter] = (),
    all_zones: bool = False,
    dry_run_flag: bool = False,
) -> list[Zone]:
    """The caller's region's zones (``all_zones`` changes nothing: Kiln has no Local Zones or
    Wavelength Zones to opt in to). A name or id that is not one of them is EC2's
    InvalidParameterValue."""
    check_filters(filters, {name: "str" for name in _FILTERS}, tag_filters=False)
    dry_run(dry_run_flag)
    found = list(zone_records(caller.region))
    by_name = {z.name: z for z in found}
    by_id = {z.zone_id: z for z in found}
    for name in zone_names:
        if name not in by_name:
            raise KilnError(errors.InvalidParameterValue, f"Invalid availability zone: [{name}]")
    for zid in zone_ids:
        if zid not in by_id:
            raise KilnError(errors.InvalidParameterValue, f"Invalid availability zone id: [{zid}]")
    if zone_names or zone_ids:
        found = [z for z in found if z.name in zone_names or z.zone_id in zone_ids]
    return [z for z in found if matches(z, (), filters, _FILTERS)]
