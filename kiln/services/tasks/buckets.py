"""Buckets: the directories ``DATA_DIR/buckets/<name>`` that imports read and exports write.

A bucket belongs to the account that made it (``kiln bucket create``, or its first ExportImage).
Only the owner reads or writes it; a bucket of another account and a bucket that does not exist
get the same ``AccessDenied``, so a stranger learns nothing (docs/security.md#buckets). Names are
global, as on S3.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from kiln import errors
from kiln.catalog import SYSTEM_ACCOUNT_ID, Catalog, Conflict
from kiln.catalog import buckets as cat_buckets
from kiln.catalog import jobs as cat_jobs
from kiln.catalog.buckets import BucketRecord
from kiln.errors import KilnError
from kiln.runtime.layout import buckets_dir

log = logging.getLogger(__name__)

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024  # S3's limit on an object key


def check_bucket_name(bucket: str) -> str:
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        raise KilnError(
            errors.InvalidParameterValue,
            f"Invalid S3 bucket name '{bucket[:80]}': 3-63 characters of a-z, 0-9, '.', '-'.",
        )
    return bucket


def denied(bucket: str) -> KilnError:
    return KilnError(
        errors.BucketAccessDenied,
        f"Access Denied: the S3 bucket '{bucket}' does not exist or is not yours.",
    )


def key_path(data_dir: Path, bucket: str, key: str) -> Path:
    """``DATA_DIR/buckets/<bucket>/<key>``; a key that would leave the bucket is refused."""
    check_bucket_name(bucket)
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if (
        any(p == ".." for p in parts)
        or "\x00" in key
        or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
        or any(len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts)
    ):
        raise KilnError(errors.InvalidParameterValue, f"Invalid S3 key or prefix '{key[:256]}'.")
    return buckets_dir(data_dir).joinpath(bucket, *parts)


def owned_bucket(catalog: Catalog, account_id: str, bucket: str) -> BucketRecord:
    """The caller's bucket, or AccessDenied (missing and foreign buckets alike)."""
    check_bucket_name(bucket)
    with catalog.read() as tx:
        found = cat_buckets.get_bucket(tx, bucket)
    if found is None or found.owner_id != account_id:
        raise denied(bucket)
    return found


def bucket_for_write(
    catalog: Catalog, data_dir: Path, account_id: str, bucket: str
) -> BucketRecord:
    """The caller's bucket for an export, created for the caller if no one has it yet."""
    check_bucket_name(bucket)
    with catalog.read() as tx:
        found = cat_buckets.get_bucket(tx, bucket)
    if found is None:
        try:
            return make_bucket(catalog, data_dir, account_id, bucket)
        except KilnError:
            pass  # another request took the name first: answer as for any foreign bucket
        with catalog.read() as tx:
            found = cat_buckets.get_bucket(tx, bucket)
    if found is None or found.owner_id != account_id:
        raise denied(bucket)
    return found


def make_bucket(catalog: Catalog, data_dir: Path, account_id: str, bucket: str) -> BucketRecord:
    """A new bucket for ``account_id`` in us-east-1 (``kiln bucket create``, a first export;
    S3's CreateBucket is kiln/services/buckets/buckets.py). A name already taken is refused."""
    check_bucket_name(bucket)
    try:
        with catalog.write() as tx:
            if cat_buckets.get_bucket(tx, bucket) is not None:
                raise Conflict(bucket)
            record = cat_buckets.insert_bucket(tx, bucket, account_id)
    except Conflict:
        raise KilnError(
            errors.InvalidParameterValue, f"The bucket name '{bucket}' is already taken."
        ) from None
    (buckets_dir(data_dir) / bucket).mkdir(parents=True, exist_ok=True)
    log.info("bucket %s created for %s", bucket, account_id)
    return record


def adopt_bucket_dirs(catalog: Catalog, data_dir: Path) -> list[BucketRecord]:
    """Give every bucket directory without an owner (made before buckets had owners) to the
    account whose most recent export wrote there, else to the operator's ``kiln`` account.
    Idempotent; run at every start of the service (see CHANGELOG.md, 0.2.0)."""
    root = buckets_dir(data_dir)
    if not root.is_dir():
        return []
    adopted: list[BucketRecord] = []
    with catalog.write() as tx:
        for entry in sorted(root.iterdir()):
            if not entry.is_dir() or not BUCKET_RE.match(entry.name):
                continue
            if cat_buckets.get_bucket(tx, entry.name) is not None:
                continue
            writers = [
                j
                for j in cat_jobs.jobs_of_kind(tx, "export-image")
                if j.params.get("s3_bucket") == entry.name
            ]
            owner = (
                max(writers, key=lambda j: j.created).account_id if writers else SYSTEM_ACCOUNT_ID
            )
            adopted.append(cat_buckets.insert_bucket(tx, entry.name, owner))
    for b in adopted:
        log.warning("bucket %s had no owner: given to account %s", b.name, b.owner_id)
    return adopted
