"""CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload, ListParts,
ListMultipartUploads.

An upload is a catalog row (its bucket, key, owner and the attributes the object will get) and
a directory ``DATA_DIR/s3/uploads/<upload id>/`` with one file per part (``<n>``, moved there
from the edge's spool) and its ETag and size beside it (``<n>.json``). Complete checks the list
as S3 does — ascending part numbers (``InvalidPartOrder``), each part uploaded with that ETag
(``InvalidPart``), every part but the last at least 5 MiB (``EntityTooSmall``) — then joins the
parts into one file, moves it into the bucket and forgets the upload. The object's ETag is S3's:
the MD5 of the parts' binary MD5s, ``-`` and the number of parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln import errors
from kiln.catalog import buckets as cat_buckets
from kiln.catalog.buckets import UploadRecord
from kiln.errors import KilnError
from kiln.runtime.bucket_files import ObjectAttributes, ObjectInfo, check_key
from kiln.runtime.layout import s3_spool_dir, s3_upload_dir
from kiln.services.buckets.access import bucket_files, bucket_of
from kiln.services.context import Caller, Services

log = logging.getLogger(__name__)

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PARTS = 10_000
MAX_LISTED = 1000
COPY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadPartRequest:
    bucket: str
    key: str
    upload_id: str
    part_number: int
    body: Path
    md5: str
    size: int


@dataclass(frozen=True, slots=True)
class PartInfo:
    part_number: int
    etag: str
    size: int
    modified: float


@dataclass(frozen=True, slots=True)
class ListPartsResult:
    upload: UploadRecord
    parts: list[PartInfo]
    truncated: bool
    next_marker: int | None


def no_such_upload() -> KilnError:
    return KilnError(
        errors.NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.",
    )


def _upload_of(
    services: Services, caller: Caller, bucket: str, key: str, upload_id: str
) -> UploadRecord:
    bucket_of(services, caller, bucket)
    with services.catalog.read() as tx:
        upload = cat_buckets.get_upload(tx, upload_id)
    if upload is None or upload.bucket != bucket or upload.key != key:
        raise no_such_upload()
    return upload


def create_multipart_upload(
    services: Services, caller: Caller, bucket: str, key: str, attributes: ObjectAttributes
) -> UploadRecord:
    """A new upload of ``key`` into the caller's bucket."""
    bucket_of(services, caller, bucket)
    check_key(key)
    upload_id = secrets.token_urlsafe(36)
    s3_upload_dir(services.data_dir, upload_id).mkdir(parents=True)
    with services.catalog.write() as tx:
        return cat_buckets.insert_upload(
            tx, upload_id, bucket, key, caller.account_id, attributes.to_json()
        )


def _part_path(services: Services, upload_id: str, number: int) -> Path:
    return s3_upload_dir(services.data_dir, upload_id) / str(number)


def upload_part(services: Services, caller: Caller, req: UploadPartRequest) -> PartInfo:
    """Keep the body as part ``part_number`` (1..10000) of the upload, replacing any."""
    if not 1 <= req.part_number <= MAX_PARTS:
        raise KilnError(
            errors.InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"
        )
    _upload_of(services, caller, req.bucket, req.key, req.upload_id)
    path = _part_path(services, req.upload_id, req.part_number)
    if not path.parent.is_dir():
        raise no_such_upload()  # aborted meanwhile
    os.replace(req.body, path)
    etag = f'"{req.md5}"'
    stat = path.stat()
    doc = {"etag": etag, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    path.with_name(f"{req.part_number}.json").write_text(json.dumps(doc))
    return PartInfo(req.part_number, etag, stat.st_size, stat.st_mtime)


def _parts(services: Services, upload_id: str) -> dict[int, PartInfo]:
    found: dict[int, PartInfo] = {}
    directory = s3_upload_dir(services.data_dir, upload_id)
    for meta in directory.glob("*.json"):
        try:
            number = int(meta.stem)
            doc: dict[str, Any] = json.loads(meta.read_text())
            stat = (directory / meta.stem).stat()
        except (OSError, ValueError):
            continue
        if stat.st_size == doc.get("size") and stat.st_mtime_ns == doc.get("mtime_ns"):
            found[number] = PartInfo(number, str(doc["etag"]), stat.st_size, stat.st_mtime)
    return found


def complete_multipart_upload(
    services: Services,
    caller: Caller,
    bucket: str,
    key: str,
    upload_id: str,
    parts: Sequence[tuple[int, str]],
) -> ObjectInfo:
    """Join ``parts`` (part number, ETag) into the object (see the module docstring)."""
    upload = _upload_of(services, caller, bucket, key, upload_id)
    if not parts:
        raise KilnError(
            errors.MalformedXML,
            "The XML you provided was not well-formed or did not validate against our "
            "published schema (a CompleteMultipartUpload needs at least one part).",
        )
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise KilnError(
            errors.InvalidPartOrder,
            "The list of parts was not in ascending order. The parts list must be specified "
            "in order by part number.",
        )
    have = _parts(services, upload_id)
    chosen: list[PartInfo] = []
    for number, etag in parts:
        part = have.get(number)
        if part is None or part.etag.strip('"') != etag.strip().strip('"'):
            raise KilnError(
                errors.InvalidPart,
                "One or more of the specified parts could not be found. The part may not have "
                "been uploaded, or the specified entity tag may not match the part's entity "
                "tag.",
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_BYTES:
            raise KilnError(
                errors.EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size "
                f"(part {part.part_number} has {part.size} bytes; every part but the last "
                "needs 5 MiB).",
            )
    digest = hashlib.md5(usedforsecurity=False)
    for part in chosen:
        digest.update(bytes.fromhex(part.etag.strip('"')))
    etag = f'"{digest.hexdigest()}-{len(chosen)}"'
    joined = _join(services, upload_id, chosen)
    try:
        info = bucket_files(services).put(
            bucket, key, joined, etag, ObjectAttributes.from_json(upload.attributes)
        )
    finally:
        joined.unlink(missing_ok=True)
    with services.catalog.write() as tx:
        cat_buckets.delete_upload(tx, upload_id)
    shutil.rmtree(s3_upload_dir(services.data_dir, upload_id), ignore_errors=True)
    log.info("s3://%s/%s: %d parts, %d bytes", bucket, key, len(chosen), info.size)
    return info


def _join(services: Services, upload_id: str, parts: Sequence[PartInfo]) -> Path:
    spool = s3_spool_dir(services.data_dir)
    spool.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool, prefix="join-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(_part_path(services, upload_id, part.part_number), "rb") as f:
                    shutil.copyfileobj(f, out, COPY_BYTES)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def abort_multipart_upload(
    services: Services, caller: Caller, bucket: str, key: str, upload_id: str
) -> None:
    """Forget the upload and its parts."""
    _upload_of(services, caller, bucket, key, upload_id)
    with services.catalog.write() as tx:
        cat_buckets.delete_upload(tx, upload_id)
    shutil.rmtree(s3_upload_dir(services.data_dir, upload_id), ignore_errors=True)


def list_parts(
    services: Services,
    caller: Caller,
    bucket: str,
    key: str,
    upload_id: str,
    max_parts: int | None,
    marker: int | None,
) -> ListPartsResult:
    """The upload's parts by number, after ``marker``, ``max_parts`` (at most 1000) at a time."""
    upload = _upload_of(services, caller, bucket, key, upload_id)
    limit = min(max_parts if max_parts is not None else MAX_LISTED, MAX_LISTED)
    parts = sorted(
        (p for p in _parts(services, upload_id).values() if p.part_number > (marker or 0)),
        key=lambda p: p.part_number,
    )
    page = parts[:limit]
    truncated = len(parts) > limit
    return ListPartsResult(
        upload, page, truncated, page[-1].part_number if truncated and page else None
    )


def list_multipart_uploads(
    services: Services, caller: Caller, bucket: str, prefix: str, max_uploads: int | None
) -> list[UploadRecord]:
    """The caller's bucket's uploads in progress whose key starts with ``prefix``."""
    bucket_of(services, caller, bucket)
    limit = min(max_uploads if max_uploads is not None else MAX_LISTED, MAX_LISTED)
    with services.catalog.read() as tx:
        uploads = cat_buckets.list_uploads(tx, bucket, limit=100_000)
    return [u for u in uploads if u.key.startswith(prefix)][:limit]
