"""DescribeRegions: the regions this endpoint serves, as EC2 lists the regions enabled for an
account; with AllRegions also the regions botocore knows that it does not serve
(``not-opted-in``). See docs/regions.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.aws.regions import RegionInfo, known_regions
from kiln.catalog.records import Filter
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.row_filters import matches
from kiln.services.validate import check_filters, dry_run


@dataclass(frozen=True, slots=True)
class RegionView:
    name: str
    endpoint: str
    opt_in_status: str  # opt-in-not-required | opted-in | not-opted-in


def _status(info: RegionInfo, served: bool) -> str:
    if not served:
        return "not-opted-in"
    return "opted-in" if info.opt_in_required else "opt-in-not-required"


_FILTERS = {
    "region-name": lambda r: [r.name],
    "endpoint": lambda r: [r.endpoint],
    "opt-in-status": lambda r: [r.opt_in_status],
}


def describe_regions(
    services: Services,
    caller: Caller,
    region_names: Sequence[str] = (),
    filters: Sequence[Filter] = (),
    all_regions: bool = False,
    dry_run_flag: bool = False,
) -> list[RegionView]:
    """The served regions (every known one with ``all_regions``), those named, filtered. A
    name no region has is EC2's ``Invalid region: [name]``."""
    check_filters(filters, {name: "str" for name in _FILTERS}, tag_filters=False)
    dry_run(dry_run_flag)
    served = set(services.regions)
    views = [
        RegionView(r.name, r.endpoint, _status(r, r.name in served))
        for r in known_regions()
        if all_regions or r.name in served
    ]
    if region_names:
        have = {v.name for v in views}
        for name in region_names:
            if name not in have:
                raise KilnError(errors.InvalidParameterValue, f"Invalid region: [{name[:64]}]")
        views = [v for v in views if v.name in region_names]
    return [v for v in views if matches(v, (), filters, _FILTERS)]
