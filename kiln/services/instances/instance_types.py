"""Instance types: EC2's whole catalog, and what a Kiln VM of a type really gets.

The catalog is kiln/data/instance_types.jsonl, made by scripts/gen_instance_types.py: one
DescribeInstanceTypes ``InstanceTypeInfo`` per type botocore names, with its published vCPUs,
memory, architectures, GPUs (docs/regions.md#instance-types says where each line comes from).
A VM gets the type's vCPUs and memory capped by :class:`InstanceCaps` (the host's size and the
operator's ``kiln serve --instance-max-vcpus / --instance-max-memory-mib``); the instance keeps
reporting its type's numbers, as EC2 does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from kiln import errors
from kiln.errors import KilnError

DEFAULT_TYPE = "m1.small"  # EC2's default when RunInstances names no InstanceType
DATA_FILE = "instance_types.jsonl"
#: The architectures Kiln's hosts run guests of (QEMU x86_64).
RUNNABLE_ARCHITECTURES = ("x86_64", "i386")


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    architectures: tuple[str, ...] = ("x86_64",)
    burstable: bool = False
    bare_metal: bool = False
    current_generation: bool = True
    gpus: int = 0
    #: The type's whole ``InstanceTypeInfo`` as DescribeInstanceTypes answers it.
    info: tuple[tuple[str, Any], ...] = ()

    def architecture_text(self) -> str:
        """The architectures as EC2's messages spell them: ``x86_64,i386``."""
        order = {"x86_64": 0, "i386": 1}
        return ",".join(sorted(self.architectures, key=lambda a: order.get(a, 2)))


@dataclass(frozen=True, slots=True)
class InstanceCaps:
    """The most vCPUs and memory one VM gets, whatever its type (kiln/app.py makes it)."""

    vcpus: int
    memory_mib: int

    def apply(self, vcpus: int, memory_mib: int) -> tuple[int, int]:
        return min(vcpus, self.vcpus), min(memory_mib, self.memory_mib)


def _from_info(info: dict[str, Any]) -> InstanceType:
    gpus = sum(int(g.get("Count", 0)) for g in info.get("GpuInfo", {}).get("Gpus", []))
    return InstanceType(
        name=str(info["InstanceType"]),
        vcpus=int(info["VCpuInfo"]["DefaultVCpus"]),
        memory_mib=int(info["MemoryInfo"]["SizeInMiB"]),
        architectures=tuple(info["ProcessorInfo"]["SupportedArchitectures"]),
        burstable=bool(info.get("BurstablePerformanceSupported", False)),
        bare_metal=bool(info.get("BareMetal", False)),
        current_generation=bool(info.get("CurrentGeneration", False)),
        gpus=gpus,
        info=tuple(sorted(info.items())),
    )


@cache
def catalog() -> dict[str, InstanceType]:
    """Every instance type, by name, in botocore's order (read once from the package)."""
    text = resources.files("kiln.data").joinpath(DATA_FILE).read_text()
    out: dict[str, InstanceType] = {}
    for line in text.splitlines():
        if line.strip():
            t = _from_info(json.loads(line))
            out[t.name] = t
    return out


def instance_type(name: str | None) -> InstanceType:
    """The type called ``name`` (EC2's default when None); InvalidParameterValue otherwise."""
    name = name or DEFAULT_TYPE
    found = catalog().get(name)
    if found is None:
        raise KilnError(
            errors.InvalidParameterValue, f"Invalid value '{name[:64]}' for InstanceType."
        )
    return found


def check_architecture(itype: InstanceType, image_architecture: str | None) -> None:
    """EC2's refusal of an image whose architecture the type does not run; then Kiln's own of
    a guest its hosts cannot run (an arm64 image on an arm64 type)."""
    arch = image_architecture or "x86_64"
    if arch not in itype.architectures:
        raise KilnError(
            errors.InvalidParameterValue,
            f"The architecture '{itype.architecture_text()}' of the specified instance type "
            f"does not match the architecture '{arch}' of the specified AMI. Specify an "
            "instance type and an AMI that have matching architectures, and try again. You "
            "can use 'describe-instance-types' or 'describe-images' to discover the "
            "architecture of the instance type or AMI.",
        )
    if arch not in RUNNABLE_ARCHITECTURES:
        raise KilnError(
            errors.UnsupportedOperation,
            f"Kiln's hosts run x86_64 guests only; the image is {arch} "
            f"({itype.name} is an {arch} type).",
        )
