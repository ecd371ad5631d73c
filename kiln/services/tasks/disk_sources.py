"""Where an imported disk comes from, and where an exported one goes.

EC2 reads imports from S3 (``UserBucket``) or a URL and writes exports to S3. Kiln's buckets are
directories (see kiln/services/tasks/buckets.py and docs/jobs.md#locations):

* ``UserBucket`` names a bucket of the caller's own and a key in it: ``DATA_DIR/buckets/<S3Bucket>/
  <S3Key>``. Another account's bucket is refused exactly like a missing one (AccessDenied).
* ``Url`` may be an ``http(s)://`` URL, downloaded first into the region's scratch directory
  through kiln/services/downloads.py (no loopback, link-local, private or multicast address
  unless the operator allowed its network), or a local path (``/abs/path`` or
  ``file:///abs/path``) inside a directory the operator listed with ``kiln serve --import-dir``
  (none by default). Any other path gets the same answer as a file that does not exist.

Paths inside the data directory (the store, the catalog and its key, the buckets) are never
read as a local path, even under an import directory. See docs/security.md.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlparse

from kiln import errors
from kiln.errors import KilnError
from kiln.runtime.downloads import DownloadPolicy, check_url
from kiln.runtime.downloads import download as guarded_download
from kiln.services.tasks import buckets

if TYPE_CHECKING:
    from kiln.catalog import Catalog

log = logging.getLogger(__name__)

#: EC2's DiskContainer.Format values (any case) -> qemu-img format names.
FORMATS = {
    "raw": "raw",
    "vmdk": "vmdk",
    "vhd": "vpc",
    "vpc": "vpc",
    "vhdx": "vhdx",
    "qcow2": "qcow2",
}
#: qemu-img format names -> what EC2 reports.
FORMAT_NAMES = {"raw": "RAW", "vmdk": "VMDK", "vpc": "VHD", "vhdx": "VHDX", "qcow2": "QCOW2"}
MAX_URL_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class ImportPolicy:
    """What API imports may read besides the caller's buckets (set by the operator)."""

    dirs: tuple[Path, ...] = ()
    download: DownloadPolicy = field(default_factory=DownloadPolicy)


@dataclass(frozen=True, slots=True)
class DiskSource:
    """A validated import source: exactly one of ``path`` (local file) or ``url`` (http)."""

    path: str | None = None
    url: str | None = None
    bucket: str | None = None
    key: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"path": self.path, "url": self.url, "bucket": self.bucket, "key": self.key}

    @classmethod
    def from_json(cls, d: dict[str, str | None]) -> DiskSource:
        return cls(d.get("path"), d.get("url"), d.get("bucket"), d.get("key"))


def disk_format(value: str | None) -> str | None:
    if value is None:
        return None
    fmt = FORMATS.get(value.lower())
    if fmt is None:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Value ({value}) for parameter Format is invalid. "
            "Supported: RAW, VMDK, VHD, VHDX, QCOW2.",
        )
    return fmt


def parse_source(
    services: SourceContext, account_id: str, url: str | None, bucket: str | None, key: str | None
) -> DiskSource:
    """Check a DiskContainer's Url or UserBucket now, so a bad one is a clear API error."""
    if url is not None and bucket is not None:
        raise KilnError(
            errors.InvalidParameterCombination,
            "A disk container takes either Url or UserBucket, not both.",
        )
    if bucket is not None:
        if not key:
            raise KilnError(
                errors.MissingParameter, "The request must contain the parameter UserBucket.S3Key"
            )
        buckets.owned_bucket(services.catalog, account_id, bucket)
        path = buckets.key_path(services.data_dir, bucket, key)
        _check_file(path, f"s3://{bucket}/{key}")
        return DiskSource(path=str(path), bucket=bucket, key=key)
    if not url:
        raise KilnError(
            errors.MissingParameter,
            "The request must contain the parameter DiskContainer.Url or UserBucket",
        )
    if len(url) > MAX_URL_LENGTH:
        raise KilnError(
            errors.InvalidParameterValue,
            f"The disk URL is longer than {MAX_URL_LENGTH} characters.",
        )
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        check_url(services.import_policy.download, url)
        return DiskSource(url=url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise KilnError(
                errors.InvalidParameterValue,
                f"Invalid file URL '{url}': only local files (file:///path).",
            )
        raw = unquote(parsed.path)
    elif parsed.scheme == "" and url.startswith("/"):
        raw = url
    else:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Unsupported disk URL '{url}': use http(s)://…, UserBucket, or a path "
            "under an import directory of the operator's.",
        )
    path = Path(os.path.normpath(raw))
    check_local_path(services, path, url)
    return DiskSource(path=str(path))


def check_local_path(services: SourceContext, path: Path, shown: str) -> None:
    """A local import path must be a regular file inside one of the operator's import
    directories and outside the data directory, after every symlink is resolved. Anything
    else gets the answer a missing file gets."""
    try:
        real = Path(os.path.realpath(path))
        data = Path(os.path.realpath(services.data_dir))
        allowed = [Path(os.path.realpath(d)) for d in services.import_policy.dirs]
    except OSError:  # a name too long, a loop of symlinks
        raise _missing(shown) from None
    if real.is_relative_to(data) or not any(real.is_relative_to(d) for d in allowed):
        log.info("local import outside the import directories refused: %s", path)
        raise _missing(shown)
    _check_file(real, shown)


class SourceContext(Protocol):
    """What checking a source needs (``Services`` has it)."""

    @property
    def catalog(self) -> Catalog: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def import_policy(self) -> ImportPolicy: ...


def _missing(shown: str) -> KilnError:
    return KilnError(
        errors.InvalidParameterValue,
        f"The disk image {shown[:1024]} does not exist or is not a regular file.",
    )


def _check_file(path: Path, shown: str) -> None:
    try:
        regular = path.is_file()
    except OSError:
        regular = False
    if not regular:
        raise _missing(shown)


def local_path(services: SourceContext, source: DiskSource) -> Path | None:
    """The file of a local source, or None for a URL, checked again when the job reads it
    (it may have disappeared, or become a symlink out of the import directory)."""
    if source.path is None:
        return None
    path = Path(source.path)
    if source.bucket:
        _check_file(path, f"s3://{source.bucket}/{source.key}")
    else:
        check_local_path(services, path, source.path)
    return path


def download(
    policy: DownloadPolicy,
    url: str,
    out: Path,
    progress: Callable[[int, int], None],
    check: Callable[[], None],
) -> int:
    """Stream ``url`` into ``out`` under ``policy`` (kiln/services/downloads.py)."""
    return guarded_download(policy, url, out, progress, check)


def export_path(data_dir: Path, bucket: str, prefix: str, task_id: str, fmt: str) -> Path:
    """Where ExportImage writes: the object ``<prefix><export-image-task-id>.<ext>`` of the
    bucket, as EC2 names it (a prefix without a trailing ``/`` is glued to the name)."""
    ext = {"raw": "raw", "vmdk": "vmdk", "vpc": "vhd"}[fmt]
    return buckets.key_path(data_dir, bucket, f"{prefix}{task_id}.{ext}")


def remove_quietly(path: Path) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove %s", path)
