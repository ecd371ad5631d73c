"""Region, availability zone and account attribute handlers (rules: kiln/services/regions)."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.ec2.tags import Params, caller_of, filters, flag, opt_bool, services_of, strs
from kiln.services.regions import account_attributes, availability_zones, regions


def describe_regions(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = regions.describe_regions(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("RegionNames")),
        filters(params),
        bool(opt_bool(params, "AllRegions")),
        flag(params, "DryRun"),
    )
    return {
        "Regions": [
            {"RegionName": r.name, "Endpoint": r.endpoint, "OptInStatus": r.opt_in_status}
            for r in found
        ]
    }


def describe_availability_zones(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = availability_zones.describe_availability_zones(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("ZoneNames")),
        strs(params.get("ZoneIds")),
        filters(params),
        bool(opt_bool(params, "AllAvailabilityZones")),
        flag(params, "DryRun"),
    )
    return {
        "AvailabilityZones": [
            {
                "OptInStatus": "opt-in-not-required",
                "Messages": [],
                "RegionName": z.region,
                "ZoneName": z.name,
                "ZoneId": z.zone_id,
                "GroupName": z.group,
                "NetworkBorderGroup": z.group,
                "ZoneType": "availability-zone",
                "State": "available",
            }
            for z in found
        ]
    }


def describe_account_attributes(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found = account_attributes.describe_account_attributes(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("AttributeNames")),
        flag(params, "DryRun"),
    )
    return {
        "AccountAttributes": [
            {"AttributeName": name, "AttributeValues": [{"AttributeValue": v} for v in values]}
            for name, values in found.items()
        ]
    }
