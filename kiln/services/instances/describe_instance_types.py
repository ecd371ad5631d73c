"""DescribeInstanceTypes and DescribeInstanceTypeOfferings over the catalog of
kiln/services/instances/instance_types.py (docs/regions.md#instance-types).

Every type is offered in every served region and in each of its zones: a Kiln host runs any
x86_64 type, capped to its size. Filters take EC2's wildcards; values are compared as EC2
prints them (``true``/``false``, numbers in decimal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kiln import errors
from kiln.catalog.records import Filter
from kiln.errors import KilnError
from kiln.services.context import Caller, Services
from kiln.services.instances.instance_types import InstanceType, catalog
from kiln.services.regions.availability_zones import zone_records
from kiln.services.row_filters import matches
from kiln.services.validate import (
    check_filters,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
)

#: DescribeInstanceTypes' page when MaxResults is not given (EC2 pages these too).
DEFAULT_PAGE = 100
LOCATION_TYPES = ("region", "availability-zone", "availability-zone-id")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path(*keys: str) -> Callable[[InstanceType], list[str]]:
    """The values at ``keys`` of a type's InstanceTypeInfo (a list's items, each)."""

    def get(t: InstanceType) -> list[str]:
        node: Any = dict(t.info)
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return []
            node = node[key]
        items = node if isinstance(node, list) else [node]
        return [_text(v) for v in items]

    return get


TYPE_FILTERS: dict[str, Callable[[InstanceType], Iterable[str | None]]] = {
    "instance-type": lambda t: [t.name],
    "auto-recovery-supported": _path("AutoRecoverySupported"),
    "bare-metal": _path("BareMetal"),
    "burstable-performance-supported": _path("BurstablePerformanceSupported"),
    "current-generation": _path("CurrentGeneration"),
    "dedicated-hosts-supported": _path("DedicatedHostsSupported"),
    "free-tier-eligible": _path("FreeTierEligible"),
    "hibernation-supported": _path("HibernationSupported"),
    "hypervisor": _path("Hypervisor"),
    "instance-storage-supported": _path("InstanceStorageSupported"),
    "instance-storage-info.total-size-in-gb": _path("InstanceStorageInfo", "TotalSizeInGB"),
    "memory-info.size-in-mib": _path("MemoryInfo", "SizeInMiB"),
    "processor-info.manufacturer": _path("ProcessorInfo", "Manufacturer"),
    "processor-info.supported-architecture": _path("ProcessorInfo", "SupportedArchitectures"),
    "processor-info.sustained-clock-speed-in-ghz": _path(
        "ProcessorInfo", "SustainedClockSpeedInGhz"
    ),
    "supported-boot-mode": _path("SupportedBootModes"),
    "supported-root-device-type": _path("SupportedRootDeviceTypes"),
    "supported-usage-class": _path("SupportedUsageClasses"),
    "supported-virtualization-type": _path("SupportedVirtualizationTypes"),
    "vcpu-info.default-cores": _path("VCpuInfo", "DefaultCores"),
    "vcpu-info.default-threads-per-core": _path("VCpuInfo", "DefaultThreadsPerCore"),
    "vcpu-info.default-vcpus": _path("VCpuInfo", "DefaultVCpus"),
    "network-info.efa-supported": _path("NetworkInfo", "EfaSupported"),
    "network-info.ena-support": _path("NetworkInfo", "EnaSupport"),
    "network-info.ipv4-addresses-per-interface": _path("NetworkInfo", "Ipv4AddressesPerInterface"),
    "network-info.ipv6-supported": _path("NetworkInfo", "Ipv6Supported"),
    "network-info.maximum-network-interfaces": _path("NetworkInfo", "MaximumNetworkInterfaces"),
    "network-info.network-performance": _path("NetworkInfo", "NetworkPerformance"),
    "ebs-info.ebs-optimized-support": _path("EbsInfo", "EbsOptimizedSupport"),
    "ebs-info.encryption-support": _path("EbsInfo", "EncryptionSupport"),
    "ebs-info.nvme-support": _path("EbsInfo", "NvmeSupport"),
    "nitro-enclaves-support": _path("NitroEnclavesSupport"),
    "nitro-tpm-support": _path("NitroTpmSupport"),
}


@dataclass(frozen=True, slots=True)
class TypesPage:
    types: list[InstanceType]
    next_token: str | None


def _page(
    names: list[str], max_results: int | None, token: str | None, query: Sequence[object]
) -> tuple[list[str], str | None]:
    after = decode_token(token, query)
    start = int(after) if isinstance(after, int) else 0
    size = max_results or DEFAULT_PAGE
    chunk = names[start : start + size]
    more = start + size < len(names)
    return chunk, encode_token(start + size, query) if more else None


def describe_instance_types(
    services: Services,
    caller: Caller,
    instance_types: Sequence[str] = (),
    filters: Sequence[Filter] = (),
    max_results: int | None = None,
    next_token: str | None = None,
    dry_run_flag: bool = False,
) -> TypesPage:
    """The types named (all by default), filtered, in botocore's order, a page at a time
    (MaxResults 5 to 100). An unknown name is EC2's InvalidInstanceType."""
    check_filters(filters, {name: "str" for name in TYPE_FILTERS}, tag_filters=False)
    check_max_results(max_results, 5, 100)
    dry_run(dry_run_flag)
    known = catalog()
    missing = [n for n in dict.fromkeys(instance_types) if n not in known]
    if missing:
        raise KilnError(
            errors.InvalidInstanceType,
            f"The following supplied instance types do not exist: [{', '.join(missing)}]",
        )
    wanted = set(instance_types)
    names = [
        n
        for n, t in known.items()
        if (not wanted or n in wanted) and matches(t, (), filters, TYPE_FILTERS)
    ]
    query = ["types", sorted(wanted), [(f.name, list(f.values)) for f in filters], max_results]
    chunk, token = _page(names, max_results, next_token, query)
    return TypesPage([known[n] for n in chunk], token)


@dataclass(frozen=True, slots=True)
class Offering:
    instance_type: str
    location_type: str
    location: str


@dataclass(frozen=True, slots=True)
class OfferingsPage:
    offerings: list[Offering]
    next_token: str | None


_OFFERING_FILTERS: dict[str, Callable[[Offering], Iterable[str | None]]] = {
    "instance-type": lambda o: [o.instance_type],
    "location": lambda o: [o.location],
}


def describe_instance_type_offerings(
    services: Services,
    caller: Caller,
    location_type: str | None = None,
    filters: Sequence[Filter] = (),
    max_results: int | None = None,
    next_token: str | None = None,
    dry_run_flag: bool = False,
) -> OfferingsPage:
    """Every type in the caller's region (``region``, the default), or in each of its zones by
    name (``availability-zone``) or id (``availability-zone-id``); filters ``instance-type``
    and ``location``. MaxResults 5 to 1000 (EC2 answers at most 1000 a page)."""
    kind = location_type or "region"
    if kind not in LOCATION_TYPES:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid value '{kind[:64]}' for LocationType. Valid values: "
            f"{', '.join(LOCATION_TYPES)}.",
        )
    check_filters(filters, {name: "str" for name in _OFFERING_FILTERS}, tag_filters=False)
    check_max_results(max_results, 5, 1000)
    dry_run(dry_run_flag)
    if kind == "region":
        places = [caller.region]
    elif kind == "availability-zone":
        places = [z.name for z in zone_records(caller.region)]
    else:
        places = [z.zone_id for z in zone_records(caller.region)]
    found = [
        o
        for name in catalog()
        for place in places
        if matches(o := Offering(name, kind, place), (), filters, _OFFERING_FILTERS)
    ]
    query = ["offerings", kind, [(f.name, list(f.values)) for f in filters], max_results]
    after = decode_token(next_token, query)
    start = int(after) if isinstance(after, int) else 0
    size = max_results or 1000
    more = start + size < len(found)
    return OfferingsPage(
        found[start : start + size], encode_token(start + size, query) if more else None
    )
