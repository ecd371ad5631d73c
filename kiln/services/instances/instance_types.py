"""Instance types: EC2's names mapped to the vCPUs and memory Kiln gives the VM.

The numbers are EC2's own for each type. QEMU reserves guest memory lazily, so a large type costs
the host only what the guest touches; ``memory_mib`` is what the guest sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln import errors
from kiln.errors import KilnError

DEFAULT_TYPE = "m1.small"  # EC2's default when RunInstances names no InstanceType


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int


def _gib(n: float) -> int:
    return int(n * 1024)


_TABLE: list[tuple[str, int, int]] = [
    ("m1.small", 1, 1740),
    ("t2.nano", 1, 512),
    ("t2.micro", 1, 1024),
    ("t2.small", 1, 2048),
    ("t2.medium", 2, 4096),
    ("t2.large", 2, 8192),
    ("t2.xlarge", 4, 16384),
    ("t3.nano", 2, 512),
    ("t3.micro", 2, 1024),
    ("t3.small", 2, 2048),
    ("t3.medium", 2, 4096),
    ("t3.large", 2, 8192),
    ("t3.xlarge", 4, 16384),
    ("t3a.nano", 2, 512),
    ("t3a.micro", 2, 1024),
    ("t3a.small", 2, 2048),
    ("t3a.medium", 2, 4096),
    ("t3a.large", 2, 8192),
    ("t3a.xlarge", 4, 16384),
    ("m5.large", 2, _gib(8)),
    ("m5.xlarge", 4, _gib(16)),
    ("m5.2xlarge", 8, _gib(32)),
    ("m6i.large", 2, _gib(8)),
    ("m6i.xlarge", 4, _gib(16)),
    ("c5.large", 2, _gib(4)),
    ("c5.xlarge", 4, _gib(8)),
    ("r5.large", 2, _gib(16)),
    ("r5.xlarge", 4, _gib(32)),
]
INSTANCE_TYPES: dict[str, InstanceType] = {n: InstanceType(n, c, m) for n, c, m in _TABLE}


def instance_type(name: str | None) -> InstanceType:
    """The type called ``name`` (EC2's default when None); InvalidParameterValue otherwise."""
    name = name or DEFAULT_TYPE
    found = INSTANCE_TYPES.get(name)
    if found is None:
        raise KilnError(errors.InvalidParameterValue, f"Invalid value '{name}' for InstanceType.")
    return found
