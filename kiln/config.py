"""Settings with embedded defaults. Nothing here reads files other than the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kiln.aws.regions import known_regions
from kiln.runtime import layout

#: The region the CLI's store commands use when given none.
DEFAULT_REGION = "us-east-1"
#: Where ``kiln bake`` publishes its base images when given no --region.
BAKE_REGIONS = ("us-east-1", "eu-west-1")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def all_regions() -> tuple[str, ...]:
    """Every region the installed botocore has an EC2 endpoint for (kiln/aws/regions.py)."""
    return tuple(r.name for r in known_regions())


def default_data_dir() -> Path:
    env = os.environ.get("KILN_DATA_DIR")
    if env:
        return Path(env)
    return Path.home() / ".local" / "share" / "kiln"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    # The regions served (kiln serve --regions): every region botocore knows for EC2 unless
    # the operator lists fewer (docs/regions.md); a region's store is made on first use.
    regions: tuple[str, ...] = field(default_factory=all_regions)
    database_url: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    extra: dict[str, str] = field(default_factory=dict)
    # API imports (docs/security.md): local directories and networks the operator opens to
    # every tenant, and the bounds of one URL download.
    import_dirs: tuple[Path, ...] = ()
    import_allow_nets: tuple[str, ...] = ()
    import_max_bytes: int = 1 << 40
    import_timeout_s: float = 6 * 3600.0
    # Instance networking (docs/networks.md): "netns" (VPCs in network namespaces; root),
    # "user" (QEMU user networking, SSH at 127.0.0.1:PORT), "auto" (netns where it can work).
    network: str = "auto"
    # The most vCPUs and memory one instance gets, whatever its type says (docs/regions.md
    # #instance-types); None: the host's (its CPU count, half its memory).
    instance_max_vcpus: int | None = None
    instance_max_memory_mib: int | None = None
    # DescribeImages Owners=["amazon"] (DescribeSnapshots OwnerIds) matches the kiln account's
    # base images (kiln serve --amazon-images; docs/aliases.md#owners-amazon).
    amazon_images: bool = False
    # How often kiln serve runs each lifecycle policy (kiln serve --lifecycle-interval, seconds;
    # docs/lifecycle.md#the-scheduler); 0: never (only `kiln lifecycle run`).
    lifecycle_interval_s: float = 3600.0
    # The Recycle Bin (docs/recycle-bin.md): how often kiln serve purges images whose retention
    # ended, and how far its clock is ahead of the real one (an operator/test setting,
    # kiln serve --recycle-bin-clock-offset; 0 on a real deployment).
    recycle_bin_sweep_s: float = 60.0
    recycle_bin_clock_offset_s: float = 0.0
    # No public share of an image whose latest scan has a critical finding, or that has no
    # clean scan (kiln serve --refuse-public-with-critical-findings; docs/scan.md).
    refuse_public_with_critical_findings: bool = False

    def region_dir(self, region: str) -> Path:
        return layout.region_dir(self.data_dir, region)

    def store_dir(self, region: str) -> Path:
        return layout.store_dir(self.data_dir, region)

    def master_key_path(self) -> Path:
        return layout.master_key_path(self.data_dir)

    def store_url(self, region: str) -> str:
        """The region's store, as kiln.store.open_store takes it (``file:///…/store``)."""
        return self.store_dir(region).absolute().as_uri()

    def netns_prefix(self) -> str:
        """The prefix of this server's VPC namespaces (unique per data directory)."""
        return layout.netns_prefix(self.data_dir)

    def catalog_url(self) -> str:
        return layout.catalog_url(self.data_dir, self.database_url)
