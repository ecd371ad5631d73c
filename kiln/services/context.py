"""What every rule receives: the wired parts (``Services``) and who is asking (``Caller``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.catalog import Catalog
from kiln.runtime import layout
from kiln.runtime.jobs import JobContext as _JobContext
from kiln.runtime.jobs import JobKind as _JobKind
from kiln.runtime.jobs import JobQueue
from kiln.services.instances.instance_types import InstanceCaps
from kiln.services.tasks.disk_sources import ImportPolicy

if TYPE_CHECKING:  # the store is only handed through; rules call its methods
    from kiln.compute.network.types import NetworkHost
    from kiln.runtime.instance_runtime import InstanceRuntime
    from kiln.store import SnapshotStore


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Services:
    """The concrete parts, wired once by kiln/app.py."""

    catalog: Catalog
    stores: Mapping[str, SnapshotStore]
    jobs: JobQueue[Services]
    data_dir: Path
    regions: tuple[str, ...]
    # VMs (kiln/services/instance_runtime.py); None where nothing runs instances (the CLI).
    compute: InstanceRuntime | None = None
    # What API imports may read besides buckets (kiln serve --import-dir / --import-allow-net).
    import_policy: ImportPolicy = field(default_factory=ImportPolicy)
    # VPC networks on the host (kiln/compute/network); None: QEMU user networking, each guest's
    # SSH forwarded from 127.0.0.1:PORT (kiln serve --network user, or no root).
    networks: NetworkHost | None = None
    # The most one instance gets, whatever its type (kiln serve --instance-max-vcpus/-memory-mib
    # and the host's size; docs/regions.md#instance-types).
    instance_caps: InstanceCaps = field(default_factory=lambda: InstanceCaps(2, 2048))
    # Owners=["amazon"] names the system account kiln (kiln serve --amazon-images).
    amazon_images: bool = False
    # The time the Recycle Bin reads (retention ends, unlock delays; docs/recycle-bin.md):
    # the real clock, shifted by kiln serve --recycle-bin-clock-offset (an operator/test setting).
    recycle_bin_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # The sharing policy "no public share with a critical finding" (kiln serve
    # --refuse-public-with-critical-findings; docs/scan.md#sharing-policy).
    refuse_public_with_critical_findings: bool = False

    def bundles_dir(self, region: str) -> Path:
        """Where instance-store bundle manifests live (see docs/api.md#bundles)."""
        return layout.bundles_dir(self.data_dir, region)


# The job types as the rules use them: their jobs see the wired Services. (At run time the
# plain classes: calling a subscripted slots dataclass fails on Python 3.11.)
if TYPE_CHECKING:
    JobKind = _JobKind[Services]
    JobContext = _JobContext[Services]
else:
    JobKind = _JobKind
    JobContext = _JobContext
