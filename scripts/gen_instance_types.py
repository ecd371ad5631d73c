"""Generate kiln/data/instance_types.jsonl: every EC2 instance type with its published specs.

    /work/main/.venv/bin/python scripts/gen_instance_types.py [--moto-wheel PATH]

Sources, in order (docs/regions.md#instance-types says the same):

1. **moto's table** (``moto/ec2/resources/instance_types.json.gz`` in the moto wheel from
   PyPI, Apache-2.0): DescribeInstanceTypes answers that moto's maintainers record from AWS and
   refresh with each release. The wheel is fetched with ``pip download`` into a temporary
   directory (or given with --moto-wheel); moto is not a dependency of Kiln.
2. **PUBLISHED below**: types botocore names that moto's table lacks (retired generations and
   the newest ones), typed in by hand from AWS's published instance-type pages.
3. **derived**: anything still missing, from EC2's naming rules (size -> vCPUs, family letter
   -> memory per vCPU, ``g`` after the generation -> Graviton arm64, ``metal`` -> bare metal,
   ``t`` -> burstable). These lines carry ``"KilnSource": "derived"``.

The list of names is botocore's ``InstanceType`` enum (service-2.json of EC2), so the file
covers exactly the types the installed botocore knows; tests/services/instances checks that.
Each line is one ``InstanceTypeInfo`` of DescribeInstanceTypes, slimmed to the members Kiln
answers, plus ``KilnSource``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import botocore.session

MOTO_VERSION = "5.2.5"
MOTO_MEMBER = "moto/ec2/resources/instance_types.json.gz"
OUT = Path(__file__).resolve().parents[1] / "kiln" / "data" / "instance_types.jsonl"

#: InstanceTypeInfo members kept as they are.
KEEP = (
    "InstanceType", "CurrentGeneration", "FreeTierEligible", "SupportedUsageClasses",
    "SupportedRootDeviceTypes", "SupportedVirtualizationTypes", "BareMetal", "Hypervisor",
    "ProcessorInfo", "VCpuInfo", "MemoryInfo", "InstanceStorageSupported", "InstanceStorageInfo",
    "GpuInfo", "FpgaInfo", "InferenceAcceleratorInfo", "NeuronInfo", "MediaAcceleratorInfo",
    "PlacementGroupInfo", "HibernationSupported", "BurstablePerformanceSupported",
    "DedicatedHostsSupported", "AutoRecoverySupported", "SupportedBootModes",
    "NitroEnclavesSupport", "NitroTpmSupport", "NitroTpmInfo",
)  # fmt: skip
NETWORK_KEEP = (
    "NetworkPerformance", "MaximumNetworkInterfaces", "MaximumNetworkCards",
    "Ipv4AddressesPerInterface", "Ipv6AddressesPerInterface", "Ipv6Supported", "EnaSupport",
    "EfaSupported",
)  # fmt: skip
EBS_KEEP = ("EbsOptimizedSupport", "EncryptionSupport", "NvmeSupport")

GIB = 1024


def _gpu(count: int, name: str, maker: str, mib_each: int) -> dict[str, object]:
    return {
        "Gpus": [
            {
                "Count": count,
                "Manufacturer": maker,
                "Name": name,
                "MemoryInfo": {"SizeInMiB": mib_each},
            }
        ],
        "TotalGpuMemoryInMiB": count * mib_each,
    }


#: name -> (vCPUs, memory MiB, architectures, GPUs or None): AWS's published specs of the
#: types botocore has and moto's table lacks (previous-generation and instance-family pages).
PUBLISHED: dict[str, tuple[int, int, tuple[str, ...], dict[str, object] | None]] = {
    "cc1.4xlarge": (16, 23 * GIB, ("x86_64",), None),
    "cc2.8xlarge": (32, 60 * GIB + 512, ("x86_64",), None),
    "cg1.4xlarge": (16, 22 * GIB + 512, ("x86_64",), _gpu(2, "M2050", "NVIDIA", 3 * GIB)),
    "cr1.8xlarge": (32, 244 * GIB, ("x86_64",), None),
    "dl1.24xlarge": (96, 768 * GIB, ("x86_64",), None),
    "f1.2xlarge": (8, 122 * GIB, ("x86_64",), None),
    "f1.4xlarge": (16, 244 * GIB, ("x86_64",), None),
    "f1.16xlarge": (64, 976 * GIB, ("x86_64",), None),
    "g2.2xlarge": (8, 15 * GIB, ("x86_64",), _gpu(1, "K520", "NVIDIA", 4 * GIB)),
    "g2.8xlarge": (32, 60 * GIB, ("x86_64",), _gpu(4, "K520", "NVIDIA", 4 * GIB)),
    "g3.4xlarge": (16, 122 * GIB, ("x86_64",), _gpu(1, "M60", "NVIDIA", 8 * GIB)),
    "g3.8xlarge": (32, 244 * GIB, ("x86_64",), _gpu(2, "M60", "NVIDIA", 8 * GIB)),
    "g3.16xlarge": (64, 488 * GIB, ("x86_64",), _gpu(4, "M60", "NVIDIA", 8 * GIB)),
    "g3s.xlarge": (4, 30 * GIB + 512, ("x86_64",), _gpu(1, "M60", "NVIDIA", 8 * GIB)),
    "g4ad.xlarge": (4, 16 * GIB, ("x86_64",), _gpu(1, "Radeon Pro V520", "AMD", 8 * GIB)),
    "g4ad.2xlarge": (8, 32 * GIB, ("x86_64",), _gpu(1, "Radeon Pro V520", "AMD", 8 * GIB)),
    "g4ad.4xlarge": (16, 64 * GIB, ("x86_64",), _gpu(1, "Radeon Pro V520", "AMD", 8 * GIB)),
    "g4ad.8xlarge": (32, 128 * GIB, ("x86_64",), _gpu(2, "Radeon Pro V520", "AMD", 8 * GIB)),
    "g4ad.16xlarge": (64, 256 * GIB, ("x86_64",), _gpu(4, "Radeon Pro V520", "AMD", 8 * GIB)),
    "hi1.4xlarge": (16, 60 * GIB + 512, ("x86_64",), None),
    "hs1.8xlarge": (16, 117 * GIB, ("x86_64",), None),
    "i3.metal": (72, 512 * GIB, ("x86_64",), None),
    "p2.xlarge": (4, 61 * GIB, ("x86_64",), _gpu(1, "K80", "NVIDIA", 12 * GIB)),
    "p2.8xlarge": (32, 488 * GIB, ("x86_64",), _gpu(8, "K80", "NVIDIA", 12 * GIB)),
    "p2.16xlarge": (64, 732 * GIB, ("x86_64",), _gpu(16, "K80", "NVIDIA", 12 * GIB)),
    "p3.2xlarge": (8, 61 * GIB, ("x86_64",), _gpu(1, "V100", "NVIDIA", 16 * GIB)),
    "p3.8xlarge": (32, 244 * GIB, ("x86_64",), _gpu(4, "V100", "NVIDIA", 16 * GIB)),
    "p3.16xlarge": (64, 488 * GIB, ("x86_64",), _gpu(8, "V100", "NVIDIA", 16 * GIB)),
    "u-6tb1.metal": (448, 6144 * GIB, ("x86_64",), None),
    "u-9tb1.metal": (448, 9216 * GIB, ("x86_64",), None),
    "u-12tb1.metal": (448, 12288 * GIB, ("x86_64",), None),
    "u-18tb1.metal": (448, 18432 * GIB, ("x86_64",), None),
    "u-24tb1.metal": (448, 24576 * GIB, ("x86_64",), None),
    "u-9tb1.112xlarge": (448, 9216 * GIB, ("x86_64",), None),
    "u-12tb1.112xlarge": (448, 12288 * GIB, ("x86_64",), None),
    "u-18tb1.112xlarge": (448, 18432 * GIB, ("x86_64",), None),
    "u-24tb1.112xlarge": (448, 24576 * GIB, ("x86_64",), None),
    "u7ib-12tb.224xlarge": (896, 12288 * GIB, ("x86_64",), None),
    "u7inh-32tb.480xlarge": (1920, 32768 * GIB, ("x86_64",), None),
}

#: Memory per vCPU (GiB) by the family's first letter, for types derived from their names.
GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8, "x": 16, "t": 4, "i": 8, "d": 8, "z": 8, "g": 4, "p": 8}
SIZES = {"medium": 1, "large": 2, "xlarge": 4}
FAMILY_RE = re.compile(r"^(?P<letters>[a-z]+?)(?P<gen>\d+)(?P<attrs>[a-z]*)$")


def _size_vcpus(size: str) -> int | None:
    size = size.removeprefix("metal-")
    if size in SIZES:
        return SIZES[size]
    m = re.fullmatch(r"(\d+)xl(?:arge)?", size)
    return int(m.group(1)) * 4 if m else None


def derive(name: str) -> dict[str, object]:
    """A type's specs from EC2's naming rules alone (see the module docstring)."""
    family, _, size = name.partition(".")
    base, *extra = family.split("-")
    fam = FAMILY_RE.match(base)
    letters = fam.group("letters") if fam else base[:1]
    attrs = fam.group("attrs") if fam else ""
    vcpus = _size_vcpus(size) or 2
    # Graviton: a "g" among the attribute letters (m7g, c7gn, m9gd); Grace: "-gb200"
    arm = "g" in attrs or any(e.startswith("gb") for e in extra)
    mib = int(vcpus * GIB_PER_VCPU.get(letters[:1], 4) * GIB)
    return _record(
        name, vcpus, mib, ("arm64",) if arm else ("x86_64",), None, current=True,
        metal=size.startswith("metal"), source="derived",
    )  # fmt: skip


def _record(
    name: str,
    vcpus: int,
    mib: int,
    archs: tuple[str, ...],
    gpus: dict[str, object] | None,
    *,
    current: bool,
    metal: bool,
    source: str,
) -> dict[str, object]:
    rec: dict[str, object] = {
        "InstanceType": name,
        "CurrentGeneration": current,
        "FreeTierEligible": False,
        "SupportedUsageClasses": ["on-demand", "spot"],
        "SupportedRootDeviceTypes": ["ebs"],
        "SupportedVirtualizationTypes": ["hvm"],
        "BareMetal": metal,
        "ProcessorInfo": {"SupportedArchitectures": list(archs)},
        "VCpuInfo": {"DefaultVCpus": vcpus},
        "MemoryInfo": {"SizeInMiB": mib},
        "InstanceStorageSupported": False,
        "BurstablePerformanceSupported": name.startswith("t"),
        "SupportedBootModes": ["uefi"] if "arm64" in archs else ["legacy-bios", "uefi"],
        "KilnSource": source,
    }
    if gpus is not None:
        rec["GpuInfo"] = gpus
    return rec


def _slim(info: dict[str, object], source: str) -> dict[str, object]:
    out = {k: info[k] for k in KEEP if k in info}
    net = info.get("NetworkInfo")
    if isinstance(net, dict):
        out["NetworkInfo"] = {k: net[k] for k in NETWORK_KEEP if k in net}
    ebs = info.get("EbsInfo")
    if isinstance(ebs, dict):
        out["EbsInfo"] = {k: ebs[k] for k in EBS_KEEP if k in ebs}
    vcpu = info.get("VCpuInfo")
    if isinstance(vcpu, dict):  # ValidCores lists every core count CpuOptions may ask for
        out["VCpuInfo"] = {k: v for k, v in vcpu.items() if not k.startswith("Valid")}
    out["KilnSource"] = source
    return out


def _moto_table(wheel: Path | None) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp,
                 f"moto=={MOTO_VERSION}"],
                check=True,
            )  # fmt: skip
            wheel = next(Path(tmp).glob("moto-*.whl"))
        with zipfile.ZipFile(wheel) as z, z.open(MOTO_MEMBER) as f:
            data: dict[str, dict[str, object]] = json.loads(gzip.decompress(f.read()))
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moto-wheel", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    names = botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum
    moto = _moto_table(args.moto_wheel)
    counts = {"moto": 0, "published": 0, "derived": 0}
    lines = []
    for name in names:
        if name in moto:
            rec = _slim(moto[name], f"moto-{MOTO_VERSION}")
            counts["moto"] += 1
        elif name in PUBLISHED:
            vcpus, mib, archs, gpus = PUBLISHED[name]
            rec = _record(name, vcpus, mib, archs, gpus, current=False,
                          metal=".metal" in name, source="published")  # fmt: skip
            counts["published"] += 1
        else:
            rec = derive(name)
            counts["derived"] += 1
        lines.append(json.dumps(rec, sort_keys=True, separators=(",", ":")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(lines)} types ({counts})", file=sys.stderr)


if __name__ == "__main__":
    main()
