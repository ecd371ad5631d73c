"""Where an imported disk comes from, and where an exported one goes.

EC2 reads imports from S3 (``UserBucket``) or a URL and writes exports to S3. Kiln has no S3,
so (see docs/jobs.md#locations):

* ``Url`` may be a local path (``/abs/path`` or ``file:///abs/path``) the server can read, or an
  ``http(s)://`` URL, downloaded first into the region's scratch directory.
* An S3 bucket is the directory ``DATA_DIR/buckets/<S3Bucket>``; ``UserBucket.S3Key`` and
  ``S3ExportLocation.S3Prefix`` are paths inside it. Bucket names follow S3's rules
  (3-63 of ``a-z0-9.-``), keys may not climb out (``..``), so nothing outside is ever touched.

A local path is read with the server's own permissions. Paths inside the data directory (the
store, the catalog and its key) are refused, except the buckets.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from kiln import errors
from kiln.errors import Ec2Error

log = logging.getLogger(__name__)

#: EC2's DiskContainer.Format values (any case) -> qemu-img format names.
FORMATS = {"raw": "raw", "vmdk": "vmdk", "vhd": "vpc", "vpc": "vpc", "vhdx": "vhdx",
           "qcow2": "qcow2"}
#: qemu-img format names -> what EC2 reports.
FORMAT_NAMES = {"raw": "RAW", "vmdk": "VMDK", "vpc": "VHD", "vhdx": "VHDX", "qcow2": "QCOW2"}
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DOWNLOAD_TIMEOUT_S = 60
DOWNLOAD_BLOCK = 1024 * 1024


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
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Value ({value}) for parameter Format is invalid. "
                       "Supported: RAW, VMDK, VHD, VHDX, QCOW2.")
    return fmt


def buckets_dir(data_dir: Path) -> Path:
    return data_dir / "buckets"


def check_bucket(bucket: str) -> str:
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Invalid S3 bucket name '{bucket}': 3-63 characters of a-z, 0-9, '.', '-'.")
    return bucket


def bucket_path(data_dir: Path, bucket: str, key: str) -> Path:
    """``DATA_DIR/buckets/<bucket>/<key>``; a key that would leave the bucket is refused."""
    check_bucket(bucket)
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or "\x00" in key:
        raise Ec2Error(errors.InvalidParameterValue, f"Invalid S3 key or prefix '{key}'.")
    return buckets_dir(data_dir).joinpath(bucket, *parts)


def parse_source(data_dir: Path, url: str | None, bucket: str | None,
                 key: str | None) -> DiskSource:
    """Check a DiskContainer's Url or UserBucket now, so a bad one is a clear API error."""
    if url is not None and bucket is not None:
        raise Ec2Error(errors.InvalidParameterCombination,
                       "A disk container takes either Url or UserBucket, not both.")
    if bucket is not None:
        if not key:
            raise Ec2Error(errors.MissingParameter,
                           "The request must contain the parameter UserBucket.S3Key")
        path = bucket_path(data_dir, bucket, key)
        _check_file(path, f"s3://{bucket}/{key}")
        return DiskSource(path=str(path), bucket=bucket, key=key)
    if not url:
        raise Ec2Error(errors.MissingParameter,
                       "The request must contain the parameter DiskContainer.Url or UserBucket")
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise Ec2Error(errors.InvalidParameterValue, f"Invalid URL '{url}'.")
        return DiskSource(url=url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise Ec2Error(errors.InvalidParameterValue,
                           f"Invalid file URL '{url}': only local files (file:///path).")
        raw = unquote(parsed.path)
    elif parsed.scheme == "" and url.startswith("/"):
        raw = url
    else:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Unsupported disk URL '{url}': use /abs/path, file:///abs/path, "
                       "http(s)://… or UserBucket.")
    path = Path(os.path.normpath(raw))
    _check_outside_data(data_dir, path)
    _check_file(path, url)
    return DiskSource(path=str(path))


def _check_outside_data(data_dir: Path, path: Path) -> None:
    real = Path(os.path.realpath(path))
    data = Path(os.path.realpath(data_dir))
    buckets = Path(os.path.realpath(buckets_dir(data_dir)))
    if real.is_relative_to(data) and not real.is_relative_to(buckets):
        raise Ec2Error(errors.InvalidParameterValue,
                       f"The disk {path} lies inside Kiln's data directory and cannot be imported.")


def _check_file(path: Path, shown: str) -> None:
    if not path.is_file():
        raise Ec2Error(errors.InvalidParameterValue,
                       f"The disk image {shown} does not exist or is not a regular file.")


def local_path(source: DiskSource) -> Path | None:
    """The file of a local source, or None for a URL. Raises if it disappeared."""
    if source.path is None:
        return None
    path = Path(source.path)
    shown = f"s3://{source.bucket}/{source.key}" if source.bucket else source.path
    _check_file(path, shown)
    return path


def download(url: str, out: Path, progress: Callable[[int, int], None],
             check: Callable[[], None]) -> int:
    """Stream ``url`` into ``out`` (replaced atomically). Returns the byte count."""
    tmp = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "kiln-import/1"})
        with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT_S) as resp, \
                open(tmp, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while True:
                check()
                block = resp.read(DOWNLOAD_BLOCK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                progress(done, total or done)
            if total and done != total:
                raise Ec2Error(errors.InvalidParameterValue,
                               f"Download of {url} ended after {done} of {total} bytes.")
        os.replace(tmp, out)
        log.info("downloaded %s: %d bytes", url, done)
        return done
    except urllib.error.HTTPError as e:
        raise Ec2Error(errors.InvalidParameterValue,
                       f"Cannot download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise Ec2Error(errors.InvalidParameterValue, f"Cannot download {url}: {reason}") from e
    except OSError as e:
        if e.errno == 28:
            raise Ec2Error(errors.StoreFull, f"No space left to download {url}") from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def export_path(data_dir: Path, bucket: str, prefix: str, task_id: str, fmt: str) -> Path:
    """Where ExportImage writes: ``DATA_DIR/buckets/<bucket>/<prefix><task-id>.<ext>`` (as EC2
    names the object ``<prefix><export-image-task-id>.<format>``)."""
    ext = {"raw": "raw", "vmdk": "vmdk", "vpc": "vhd"}[fmt]
    base = bucket_path(data_dir, bucket, prefix) if prefix.strip("/") else \
        bucket_path(data_dir, bucket, "")
    if prefix and not prefix.endswith("/"):
        return base.with_name(f"{base.name}{task_id}.{ext}")
    return base / f"{task_id}.{ext}"


def remove_quietly(path: Path) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove %s", path)
