"""Who may use a bucket: its owner. A stranger is answered as S3 answers one.

Bucket names are global (one namespace for every account and region, as on S3). A bucket that
does not exist is ``NoSuchBucket`` (404); another account's is ``AccessDenied`` (403) for every
request on it or its objects, as S3 answers an account its bucket policy does not name. (The
import and export rules in kiln/services/tasks/buckets.py answer both with ``AccessDenied``, as
EC2's VM Import reports a bucket it cannot read.)
"""

from __future__ import annotations

import ipaddress
import re

from kiln import errors
from kiln.catalog import buckets as cat_buckets
from kiln.catalog.buckets import BucketRecord
from kiln.errors import KilnError
from kiln.runtime.bucket_files import BucketFiles
from kiln.services.context import Caller, Services

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket_name(name: str) -> str:
    """``name`` if S3 would take it for a new bucket, else InvalidBucketName."""
    bad = not BUCKET_RE.match(name) or ".." in name or ".-" in name or "-." in name
    if not bad:
        try:
            ipaddress.IPv4Address(name)
            bad = True
        except ValueError:
            pass
    if bad or name.startswith("xn--") or name.endswith("-s3alias"):
        raise KilnError(errors.InvalidBucketName, "The specified bucket is not valid.")
    return name


def no_such_bucket() -> KilnError:
    return KilnError(errors.NoSuchBucket, "The specified bucket does not exist")


def bucket_of(services: Services, caller: Caller, name: str) -> BucketRecord:
    """The caller's bucket ``name``.

    :raises KilnError: NoSuchBucket when there is none; AccessDenied when it is another
        account's."""
    with services.catalog.read() as tx:
        found = cat_buckets.get_bucket(tx, name)
    if found is None:
        raise no_such_bucket()
    if found.owner_id != caller.account_id:
        raise KilnError(errors.BucketAccessDenied, "Access Denied")
    return found


def bucket_files(services: Services) -> BucketFiles:
    return BucketFiles(services.data_dir)
