"""The regions AWS has, as the installed botocore knows them (its ``endpoints.json``).

Every partition's region that has an EC2 endpoint is a region Kiln can serve (docs/regions.md):
``aws`` (us-east-1 …), ``aws-cn``, ``aws-us-gov``, the isolated partitions and the European
sovereign cloud. A newer botocore brings newer regions without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from botocore.loaders import Loader

#: The regions of the ``aws`` partition that are on for every account (AWS's regions from
#: before March 2019); every later one needs the account to opt in (EC2's ``OptInStatus``).
OPT_IN_NOT_REQUIRED = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
        "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-southeast-1", "ap-southeast-2",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RegionInfo:
    name: str
    partition: str
    description: str
    endpoint: str  # EC2's hostname there: ec2.us-east-1.amazonaws.com
    opt_in_required: bool


@cache
def known_regions() -> tuple[RegionInfo, ...]:
    """Every region with an EC2 endpoint in botocore's partitions, in botocore's order."""
    data = Loader().load_data("endpoints")
    out: list[RegionInfo] = []
    for part in data["partitions"]:
        ec2 = part.get("services", {}).get("ec2", {}).get("endpoints", {})
        suffix = str(part["dnsSuffix"])
        for name, info in part.get("regions", {}).items():
            if name not in ec2:
                continue
            out.append(
                RegionInfo(
                    name=name,
                    partition=str(part["partition"]),
                    description=str(info.get("description", name)),
                    endpoint=f"ec2.{name}.{suffix}",
                    opt_in_required=part["partition"] == "aws" and name not in OPT_IN_NOT_REQUIRED,
                )
            )
    return tuple(out)


@cache
def known_region_names() -> frozenset[str]:
    return frozenset(r.name for r in known_regions())


def region_info(name: str) -> RegionInfo | None:
    return next((r for r in known_regions() if r.name == name), None)
