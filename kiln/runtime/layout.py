"""The host disk layout: the one place that spells where Kiln keeps its files.

```
DATA_DIR                                  $KILN_DATA_DIR, else ~/.local/share/kiln
  catalog.sqlite3                         the catalog (unless --database-url)
  catalog.key                             0600 master key sealing secrets in the catalog
  buckets/<bucket>/<key>                  the objects of S3 buckets (imports read, exports write)
  s3/meta/<bucket>/<key>                  an object's ETag, Content-Type and x-amz-meta-* (JSON)
  s3/uploads/<upload id>/<part number>    the parts of a multipart upload in progress
  s3/spool/                               request bodies being received (kiln/aws/payload.py)
  network/<vpc-id>/                       a VPC's host network state: its DHCP server's pid file,
                                          hosts file, leases and log (kiln/compute/network)
  regions/<region>/
    store/                                the region's chunk store (docs/storage-format.md)
    store/scratch/                        the store's temporary files (opened by kiln.store)
    bases/<snap-id>[@<bytes>].raw         read-only raw bases of volumes (kiln/runtime/volume_disks.py)
    bases/empty-<bytes>.raw               an all-zero base for volumes made without a snapshot
    bases/<snap-id>.image[.pvh]           a kernel's or ramdisk's file (an AKI's or ARI's bundle
                                          disk), and the kernel's PVH ELF (docs/instances.md)
    volumes/<vol-id>.qcow2                a volume: its overlay over a base
    instances/<i-id>/                     an instance's run directory (seed, console.log, qemu.pid)
    bundles/<bucket>/<manifest>           instance-store bundle manifests (docs/api.md#bundles)
```
Every function here only computes a path; none creates or reads anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CATALOG_FILE = "catalog.sqlite3"
MASTER_KEY_FILE = "catalog.key"
CONSOLE_LOG = "console.log"


def catalog_file(data_dir: Path) -> Path:
    return data_dir / CATALOG_FILE


def catalog_url(data_dir: Path, database_url: str | None = None) -> str:
    """The catalog's SQLAlchemy URL: ``database_url`` if given, else the SQLite file."""
    return database_url or f"sqlite:///{catalog_file(data_dir)}"


def master_key_path(data_dir: Path) -> Path:
    return data_dir / MASTER_KEY_FILE


def buckets_dir(data_dir: Path) -> Path:
    return data_dir / "buckets"


def s3_dir(data_dir: Path) -> Path:
    return data_dir / "s3"


def s3_meta_dir(data_dir: Path, bucket: str) -> Path:
    """The objects' metadata of ``bucket``: one JSON file per object, at the object's key."""
    return s3_dir(data_dir) / "meta" / bucket


def s3_uploads_dir(data_dir: Path) -> Path:
    return s3_dir(data_dir) / "uploads"


def s3_upload_dir(data_dir: Path, upload_id: str) -> Path:
    return s3_uploads_dir(data_dir) / upload_id


def s3_spool_dir(data_dir: Path) -> Path:
    """Where the edge writes request bodies as they arrive (on the data dir's file system, so
    an object is renamed into its bucket, not copied)."""
    return s3_dir(data_dir) / "spool"


def network_dir(data_dir: Path) -> Path:
    """The state of the VPCs' host networks (one directory per VPC id inside)."""
    return data_dir / "network"


def netns_prefix(data_dir: Path) -> str:
    """The prefix of the network namespaces of the server on ``data_dir``: ``k`` + 6 hex digits
    of its absolute path + ``-``. A server removes the unlisted namespaces with its own prefix
    only, so two servers with different data directories never touch each other's VPCs (and a
    namespace name stays short: ``k1a2b3c-vpc-`` + 17 hex digits)."""
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()
    return f"k{digest[:6]}-"


def regions_dir(data_dir: Path) -> Path:
    return data_dir / "regions"


def region_dir(data_dir: Path, region: str) -> Path:
    return regions_dir(data_dir) / region


def store_dir(data_dir: Path, region: str) -> Path:
    return region_dir(data_dir, region) / "store"


def store_dirs(data_dir: Path) -> dict[str, Path]:
    """Every region's store that exists under ``data_dir`` (a store has its ``config`` file)."""
    return {
        cfg.parent.parent.name: cfg.parent
        for cfg in sorted(regions_dir(data_dir).glob("*/store/config"))
    }


def bases_dir(data_dir: Path, region: str) -> Path:
    return region_dir(data_dir, region) / "bases"


def boot_image_path(data_dir: Path, region: str, snapshot_id: str) -> Path:
    """The file of a kernel or ramdisk image's bundle disk, restored once, read-only."""
    return bases_dir(data_dir, region) / f"{snapshot_id}.image"


def volumes_dir(data_dir: Path, region: str) -> Path:
    return region_dir(data_dir, region) / "volumes"


def volume_path(data_dir: Path, region: str, volume_id: str) -> Path:
    return volumes_dir(data_dir, region) / f"{volume_id}.qcow2"


def instances_dir(data_dir: Path, region: str) -> Path:
    return region_dir(data_dir, region) / "instances"


def instance_dir(data_dir: Path, region: str, instance_id: str) -> Path:
    """An instance's run directory: its seed, disks of its own, console log and QEMU pid."""
    return instances_dir(data_dir, region) / instance_id


def console_log_path(data_dir: Path, region: str, instance_id: str) -> Path:
    return instance_dir(data_dir, region, instance_id) / CONSOLE_LOG


def bundles_dir(data_dir: Path, region: str) -> Path:
    """Where instance-store bundle manifests live (see docs/api.md#bundles)."""
    return region_dir(data_dir, region) / "bundles"


def known_regions(data_dir: Path) -> list[str]:
    """The regions that have a directory under ``data_dir``, sorted."""
    root = regions_dir(data_dir)
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []
