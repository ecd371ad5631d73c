"""Instance type handlers: DescribeInstanceTypes, DescribeInstanceTypeOfferings (rules:
kiln/services/instances/describe_instance_types.py)."""

from __future__ import annotations

from collections.abc import Mapping

from kiln.aws.context import RequestContext
from kiln.ec2.tags import Params, caller_of, filters, flag, opt_int, opt_str, services_of, strs
from kiln.services.instances import describe_instance_types as rules
from kiln.services.instances.instance_types import InstanceType


def instance_type_out(t: InstanceType) -> dict[str, object]:
    """The type's InstanceTypeInfo, without Kiln's note of where its line came from."""
    return {k: v for k, v in t.info if k != "KilnSource"}


def describe_instance_types(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.describe_instance_types(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("InstanceTypes")),
        filters(params),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )
    return {
        "InstanceTypes": [instance_type_out(t) for t in page.types],
        "NextToken": page.next_token,
    }


def describe_instance_type_offerings(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    page = rules.describe_instance_type_offerings(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "LocationType"),
        filters(params),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )
    return {
        "InstanceTypeOfferings": [
            {
                "InstanceType": o.instance_type,
                "LocationType": o.location_type,
                "Location": o.location,
            }
            for o in page.offerings
        ],
        "NextToken": page.next_token,
    }
