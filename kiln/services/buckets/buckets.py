"""CreateBucket, ListBuckets, HeadBucket, GetBucketLocation, DeleteBucket.

A bucket is a catalog row (name, owner, region) and the directory ``DATA_DIR/buckets/<name>``.
CreateBucket follows S3: the LocationConstraint must be the region the request is signed for
(``IllegalLocationConstraintException`` otherwise, and for no constraint outside us-east-1;
``InvalidLocationConstraint`` for ``us-east-1`` spelled out or a region Kiln does not serve);
a name another account has is ``BucketAlreadyExists``; your own again is
``BucketAlreadyOwnedByYou`` — except in us-east-1, where S3 answers 200 and changes nothing.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

from kiln import errors
from kiln.catalog import Conflict
from kiln.catalog import buckets as cat_buckets
from kiln.catalog.buckets import BucketRecord
from kiln.errors import KilnError
from kiln.runtime.layout import s3_upload_dir
from kiln.services.buckets.access import bucket_files, bucket_of, check_bucket_name
from kiln.services.context import Caller, Services

log = logging.getLogger(__name__)

LEGACY_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class CreateBucketRequest:
    bucket: str
    location_constraint: str | None = None


@dataclass(frozen=True, slots=True)
class ListBucketsResult:
    buckets: list[BucketRecord]
    continuation_token: str | None


def _check_location(caller: Caller, services: Services, constraint: str | None) -> str:
    if constraint is None or constraint == "":
        if caller.region != LEGACY_REGION:
            raise KilnError(
                errors.IllegalLocationConstraint,
                "The unspecified location constraint is incompatible for the region specific "
                "endpoint this request was sent to.",
            )
        return LEGACY_REGION
    if constraint == LEGACY_REGION or constraint not in services.regions:
        raise KilnError(
            errors.InvalidLocationConstraint, "The specified location-constraint is not valid"
        )
    if constraint != caller.region:
        raise KilnError(
            errors.IllegalLocationConstraint,
            f"The {constraint[:32]} location constraint is incompatible for the region "
            "specific endpoint this request was sent to.",
        )
    return constraint


def create_bucket(services: Services, caller: Caller, req: CreateBucketRequest) -> BucketRecord:
    """A new bucket of the caller's in the request's region (see the module docstring)."""
    check_bucket_name(req.bucket)
    region = _check_location(caller, services, req.location_constraint)
    try:
        with services.catalog.write() as tx:
            found = cat_buckets.get_bucket(tx, req.bucket)
            if found is None:
                record = cat_buckets.insert_bucket(tx, req.bucket, caller.account_id, region)
            else:
                raise Conflict(req.bucket)
    except Conflict:
        with services.catalog.read() as tx:
            found = cat_buckets.get_bucket(tx, req.bucket)
        if found is not None and found.owner_id == caller.account_id:
            if caller.region == LEGACY_REGION and found.region == LEGACY_REGION:
                return found
            raise KilnError(
                errors.BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already "
                "own it.",
            ) from None
        raise KilnError(
            errors.BucketAlreadyExists,
            "The requested bucket name is not available. The bucket namespace is shared by "
            "all users of the system. Please select a different name and try again.",
        ) from None
    bucket_files(services).make_bucket(req.bucket)
    log.info("bucket %s created for %s in %s", req.bucket, caller.account_id, region)
    return record


def list_buckets(
    services: Services, caller: Caller, max_buckets: int | None, token: str | None
) -> ListBucketsResult:
    """The caller's buckets by name; ``max_buckets`` at a time after ``token`` (a name)."""
    with services.catalog.read() as tx:
        mine = cat_buckets.list_buckets(tx, caller.account_id)
    if token:
        mine = [b for b in mine if b.name > token]
    if max_buckets is not None and len(mine) > max_buckets:
        page = mine[:max_buckets]
        return ListBucketsResult(page, page[-1].name)
    return ListBucketsResult(mine, None)


def head_bucket(services: Services, caller: Caller, bucket: str) -> BucketRecord:
    """The caller's bucket (NoSuchBucket, AccessDenied)."""
    return bucket_of(services, caller, bucket)


def get_bucket_location(services: Services, caller: Caller, bucket: str) -> str | None:
    """The bucket's LocationConstraint: None for us-east-1, as S3 answers."""
    region = bucket_of(services, caller, bucket).region
    return None if region == LEGACY_REGION else region


def delete_bucket(services: Services, caller: Caller, bucket: str) -> None:
    """Delete the caller's empty bucket, and the multipart uploads left in it.

    :raises KilnError: BucketNotEmpty while it has an object."""
    bucket_of(services, caller, bucket)
    files = bucket_files(services)
    if not files.is_empty(bucket):
        raise KilnError(errors.BucketNotEmpty, "The bucket you tried to delete is not empty")
    with services.catalog.write() as tx:
        uploads = cat_buckets.list_uploads(tx, bucket, limit=100_000)
        cat_buckets.delete_bucket(tx, bucket)
    for upload in uploads:
        shutil.rmtree(s3_upload_dir(services.data_dir, upload.upload_id), ignore_errors=True)
    files.remove_bucket(bucket)
    log.info("bucket %s deleted by %s", bucket, caller.account_id)
