"""create_app(): the one place where the concrete parts meet.

Catalog (SQLite or PostgreSQL), one store per region, the job queue with the one registry of job
kinds, the instance runtime, and the AWS edge (kiln/aws/edge.py) with its services mounted:
EC2, STS, KMS, SSM and S3, each with its ACTIONS table. Nothing else imports the concrete
implementations.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette

from kiln import errors
from kiln.aws.edge import Service, build_edge
from kiln.aws.sigv4 import Credential
from kiln.catalog import Catalog, open_catalog
from kiln.compute.accel import probe_accelerator
from kiln.compute.network.host import NetnsNetworkHost
from kiln.compute.network.types import NetworkHost
from kiln.compute.qemu import QemuDriver
from kiln.config import Settings
from kiln.ec2.actions import ACTIONS as EC2_ACTIONS
from kiln.ec2.server import ec2_service
from kiln.errors import KilnError
from kiln.imagebuilder.actions import ACTIONS as IMAGEBUILDER_ACTIONS
from kiln.imagebuilder.service import imagebuilder_service
from kiln.kms.actions import ACTIONS as KMS_ACTIONS
from kiln.kms.service import kms_service
from kiln.rbin.actions import ACTIONS as RBIN_ACTIONS
from kiln.rbin.service import rbin_service
from kiln.runtime.downloads import DownloadPolicy, parse_networks
from kiln.runtime.instance_runtime import InstanceRuntime
from kiln.runtime.jobs import DEFAULT_WORKERS as DEFAULT_JOB_WORKERS
from kiln.runtime.jobs import JobRunner
from kiln.runtime.layout import network_dir, s3_spool_dir
from kiln.runtime.ticker import Ticker
from kiln.s3.actions import ACTIONS as S3_ACTIONS
from kiln.s3.service import s3_service
from kiln.services.accounts.accounts import lookup_access_key
from kiln.services.context import JobKind, Services
from kiln.services.imagebuilder.images import fail_interrupted_builds, stop_builds
from kiln.services.instances import vm_network
from kiln.services.instances.instance_types import InstanceCaps
from kiln.services.instances.lifecycle import reconcile, watch_running
from kiln.services.job_kinds import JOB_KINDS
from kiln.services.lifecycle.runs import run_due_lifecycle_policies
from kiln.services.recyclebin.images import purge_recycle_bin
from kiln.services.tasks.buckets import adopt_bucket_dirs
from kiln.services.tasks.disk_sources import ImportPolicy
from kiln.ssm.actions import ACTIONS as SSM_ACTIONS
from kiln.ssm.service import ssm_service
from kiln.store import SnapshotStore, open_store
from kiln.sts.actions import ACTIONS as STS_ACTIONS
from kiln.sts.service import sts_service

log = logging.getLogger(__name__)


def master_key_path(settings: Settings) -> Path:
    return settings.master_key_path()


def open_settings_catalog(settings: Settings) -> Catalog:
    """The catalog named by ``settings`` (migrated, regions recorded)."""
    return open_catalog(settings.catalog_url(), master_key_path(settings), settings.regions)


def import_policy(settings: Settings) -> ImportPolicy:
    """What API imports may read, from the operator's settings (a bad network: ValueError)."""
    return ImportPolicy(
        dirs=tuple(settings.import_dirs),
        download=DownloadPolicy(
            allow_nets=parse_networks(settings.import_allow_nets),
            max_bytes=settings.import_max_bytes,
            deadline_s=settings.import_timeout_s,
        ),
    )


class RegionStores(Mapping[str, SnapshotStore]):
    """The store of each served region, opened (and so created, docs/storage-format.md) the
    first time a rule asks for it: serving every region costs nothing until one is used. A
    region not served is a KeyError, as in any mapping."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._regions = tuple(settings.regions)
        self._open: dict[str, SnapshotStore] = {}
        self._lock = threading.Lock()

    def __getitem__(self, region: str) -> SnapshotStore:
        found = self._open.get(region)
        if found is not None:
            return found
        if region not in self._regions:
            raise KeyError(region)
        with self._lock:
            if region not in self._open:
                self._open[region] = open_store(self._settings.store_url(region))
                log.info("region %s: store opened", region)
            return self._open[region]

    def __iter__(self) -> Iterator[str]:
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)


def _host_memory_mib() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def instance_caps(settings: Settings) -> InstanceCaps:
    """What one instance may get (docs/regions.md#instance-types): the host's CPUs and half
    its memory, lowered by the operator's --instance-max-vcpus / --instance-max-memory-mib."""
    host_cpus = os.cpu_count() or 1
    host_mib = max(256, (_host_memory_mib() or 2048) // 2)
    vcpus = min(host_cpus, settings.instance_max_vcpus or host_cpus)
    memory = min(host_mib, settings.instance_max_memory_mib or host_mib)
    return InstanceCaps(vcpus=vcpus, memory_mib=memory)


NETWORK_MODES = ("auto", "netns", "user")


def build_network_host(settings: Settings, catalog: Catalog) -> NetworkHost | None:
    """The host side of VPCs for ``settings.network`` (docs/networks.md): ``user`` gives None
    (QEMU user networking); ``netns`` gives network namespaces or fails with the reason they
    cannot work here; ``auto`` takes namespaces when they can work (root, the tools present)
    and falls back to user networking with one log line saying why."""
    mode = settings.network
    if mode not in NETWORK_MODES:
        raise KilnError(
            errors.InvalidParameterValue,
            f"network mode {mode!r} is not one of {', '.join(NETWORK_MODES)}",
        )
    if mode == "user":
        return None
    reason = NetnsNetworkHost.probe()
    if reason is None and os.geteuid() != 0:
        reason = "network namespaces need root"
    if reason is not None:
        if mode == "netns":
            raise KilnError(errors.InsufficientInstanceCapacity, f"--network netns: {reason}")
        log.warning("instances use QEMU user networking (SSH at 127.0.0.1:PORT): %s", reason)
        return None
    return NetnsNetworkHost(
        network_dir(settings.data_dir),
        vm_network.metadata_lookup(catalog),
        prefix=settings.netns_prefix(),
    )


def build_services(
    settings: Settings,
    *,
    compute: InstanceRuntime | None,
    catalog: Catalog | None = None,
    kinds: Mapping[str, JobKind] = JOB_KINDS,
    job_workers: int = DEFAULT_JOB_WORKERS,
    network: bool = False,
) -> Services:
    """The one wiring of the rules' parts, used by the server, the CLI and the tests.

    ``compute`` runs the instances: ``build_runtime()`` for QEMU, a runtime over
    kiln.compute's fake driver in tests, or None where nothing runs VMs (the rules then answer
    UnsupportedOperation). ``catalog`` is an already open catalog to use instead of the one
    ``settings`` names (tests of both dialects). ``kinds`` is the registry of job kinds
    (kiln/services/job_kinds.py); tests of the queue pass their own. Nothing here falls back
    to a part that was not asked for. ``network``: wire the VPC host networks that
    ``settings.network`` asks for (the server; the CLI and most tests run no guests).
    """
    policy = import_policy(settings)
    if catalog is None:
        catalog = open_settings_catalog(settings)
    adopt_bucket_dirs(catalog, settings.data_dir)
    stores = RegionStores(settings)
    jobs: JobRunner[Services] = JobRunner(kinds, workers=job_workers)
    return Services(
        catalog=catalog,
        stores=stores,
        jobs=jobs,
        data_dir=settings.data_dir,
        regions=tuple(settings.regions),
        compute=compute,
        import_policy=policy,
        networks=build_network_host(settings, catalog) if network else None,
        instance_caps=instance_caps(settings),
        amazon_images=settings.amazon_images,
        recycle_bin_clock=recycle_bin_clock(settings),
        refuse_public_with_critical_findings=settings.refuse_public_with_critical_findings,
    )


def recycle_bin_clock(settings: Settings) -> Callable[[], datetime]:
    """The Recycle Bin's clock: the real one plus ``settings.recycle_bin_clock_offset_s``."""
    offset = timedelta(seconds=settings.recycle_bin_clock_offset_s)
    return lambda: datetime.now(UTC) + offset


def build_runtime() -> InstanceRuntime:
    """QEMU VMs; the accelerator from $KILN_ACCEL (auto | kvm | tcg, default auto: KVM only if
    a probe guest boots under it, see kiln/compute/accel.py); the QEMU binary from $KILN_QEMU
    (default qemu-system-x86_64 on PATH)."""
    driver = QemuDriver(os.environ.get("KILN_QEMU", "qemu-system-x86_64"))

    def qemu_present() -> None:
        if shutil.which(driver.qemu_binary) is None:
            raise KilnError(
                errors.InsufficientInstanceCapacity,
                f"No instance can start: {driver.qemu_binary} is not installed "
                "(Debian package qemu-system-x86).",
            )

    return InstanceRuntime(
        driver,
        os.environ.get("KILN_ACCEL", "auto"),
        lambda requested: probe_accelerator(requested),
        preflight=qemu_present,
    )


def mounted_services() -> list[Service]:
    """The services the edge serves, by SigV4 scope name; the first (EC2) answers unsigned
    requests."""
    return [
        ec2_service(EC2_ACTIONS),
        sts_service(STS_ACTIONS),
        kms_service(KMS_ACTIONS),
        ssm_service(SSM_ACTIONS),
        s3_service(S3_ACTIONS),
        rbin_service(RBIN_ACTIONS),
        imagebuilder_service(IMAGEBUILDER_ACTIONS),
    ]


def _sweep_recycle_bin(svc: Services) -> None:
    purged = purge_recycle_bin(svc, svc.recycle_bin_clock())
    if purged:
        log.info("recycle bin: purged %d image(s): %s", len(purged), ", ".join(purged))


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """The ASGI app for ``kiln serve``. Unfinished jobs are resumed or failed at startup."""
    svc = (
        services
        if services is not None
        else build_services(settings, compute=build_runtime(), network=True)
    )

    def lookup(access_key_id: str) -> Credential | None:
        key = lookup_access_key(svc.catalog, access_key_id)
        if key is None:
            return None
        return Credential(key.access_key_id, key.secret_access_key, key.account_id)

    spool = s3_spool_dir(svc.data_dir)
    shutil.rmtree(spool, ignore_errors=True)  # bodies a stopped server was still receiving
    app = build_edge(mounted_services(), lookup, svc.regions, svc, spool_dir=spool)
    scheduler = lifecycle_scheduler(settings, svc)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if svc.networks is not None:  # before any job can start or stop a VM
            svc.networks.reconcile(*vm_network.running_networks(svc))
        resumed = svc.jobs.start(svc)
        if scheduler is not None:
            scheduler.start()
        log.info(
            "kiln serving %d region(s) (%s); %d job(s) resumed; an instance gets at most "
            "%d vCPUs and %d MiB",
            len(svc.regions),
            ", ".join(svc.regions),
            resumed,
            svc.instance_caps.vcpus,
            svc.instance_caps.memory_mib,
        )
        sweep = Ticker(
            settings.recycle_bin_sweep_s, lambda: _sweep_recycle_bin(svc), "kiln-recycle-bin"
        )
        sweep.start()  # its first purge now: what came due while the server was down
        if svc.compute is not None:
            alive = reconcile(svc)
            interrupted = fail_interrupted_builds(svc)
            if interrupted:
                log.info("image builder: %d build(s) failed by the stop", len(interrupted))
            svc.compute.watch(lambda: watch_running(svc))
            log.info("instances: %d VM(s) re-attached", alive)
        yield
        stop_builds()  # Image Builder builds end at the next start (fail_interrupted_builds)
        if scheduler is not None:
            scheduler.stop()
        sweep.stop()
        if svc.compute is not None:
            svc.compute.close()
        if svc.networks is not None:
            svc.networks.close()
        svc.jobs.stop()
        svc.catalog.close()

    app.router.lifespan_context = lifespan
    app.state.services = svc
    return app


#: The lifecycle scheduler looks for due policies at least this often (seconds).
LIFECYCLE_CHECK_S = 30.0


def lifecycle_scheduler(settings: Settings, svc: Services) -> Ticker | None:
    """kiln serve's lifecycle scheduler (docs/lifecycle.md#the-scheduler): runs each enabled
    policy once per ``settings.lifecycle_interval_s``, measured from the last run's start as
    the catalog records it; None when the interval is 0."""
    interval = settings.lifecycle_interval_s
    if interval <= 0:
        return None
    every = timedelta(seconds=interval)
    return Ticker(
        min(interval, LIFECYCLE_CHECK_S),
        lambda: run_due_lifecycle_policies(svc, every),
        "kiln-lifecycle",
    )
