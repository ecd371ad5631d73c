"""S3 objects as files: ``DATA_DIR/buckets/<bucket>/<key>``, their metadata beside in ``s3/meta``.

An object is the file at its key, so what imports read and exports write (kiln/services/tasks)
is what GetObject serves, and a file an export (or the operator) put in a bucket directory is an
object. Each object's ETag, Content-Type, ``x-amz-meta-*`` and content headers are a JSON file at
the same key under ``s3/meta/<bucket>/``, valid while the object's size and mtime are those it
records; a file without one (an export's) gets its ETag computed once (the MD5, as S3's for a
single PUT) and the default ``binary/octet-stream``.

A key is a path, so it must be one: no empty, ``.`` or ``..`` segment (``a//b``, ``a/``, ``/a``),
no NUL, at most 1024 UTF-8 bytes and 255 per segment, and a key cannot be both an object and the
prefix of one (``a`` and ``a/b``). Writes are atomic (a finished file renamed into place, after
``fsync``); listing walks the tree in S3's order (UTF-8 bytes of the key).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from kiln import errors
from kiln.errors import KilnError
from kiln.runtime.layout import buckets_dir, s3_meta_dir

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
READ_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ObjectAttributes:
    """What a PUT sets besides the bytes: Content-Type, the ``x-amz-meta-*`` map (lower-case
    names) and the content headers S3 keeps (Cache-Control, Content-Disposition,
    Content-Encoding, Content-Language), by output member name."""

    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "content_type": self.content_type,
            "metadata": dict(self.metadata),
            "headers": dict(self.headers),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> ObjectAttributes:
        meta, heads = doc.get("metadata"), doc.get("headers")
        return cls(
            str(doc.get("content_type") or DEFAULT_CONTENT_TYPE),
            {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
            {str(k): str(v) for k, v in heads.items()} if isinstance(heads, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # quoted, as S3 sends it: '"<md5 hex>"' or '"<md5 of md5s>-<parts>"'
    modified: datetime
    attributes: ObjectAttributes


def check_key(key: str) -> list[str]:
    """The path segments of ``key``.

    :raises KilnError: KeyTooLongError past 1024 bytes; InvalidArgument for a key that cannot
        be a path (see the module docstring)."""
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_KEY_BYTES:
        raise KilnError(errors.KeyTooLong, "Your key is too long (at most 1024 bytes).")
    parts = key.split("/")
    if (
        not key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
        or any(len(p.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES for p in parts)
    ):
        raise KilnError(
            errors.InvalidArgument,
            f"Kiln stores an object as a file at its key: the key {key[:256]!r} has an empty, "
            "'.' or '..' segment, a NUL, or a segment of more than 255 bytes.",
        )
    return parts


def _utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class BucketFiles:
    """The objects of every bucket under one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    def bucket_dir(self, bucket: str) -> Path:
        return buckets_dir(self._data_dir) / bucket

    def object_path(self, bucket: str, key: str) -> Path:
        return self.bucket_dir(bucket).joinpath(*check_key(key))

    def _meta_path(self, bucket: str, key: str) -> Path:
        return s3_meta_dir(self._data_dir, bucket).joinpath(*check_key(key))

    # --- buckets --------------------------------------------------------------------------
    def make_bucket(self, bucket: str) -> None:
        self.bucket_dir(bucket).mkdir(parents=True, exist_ok=True)

    def is_empty(self, bucket: str) -> bool:
        return next(self.keys(bucket), None) is None

    def remove_bucket(self, bucket: str) -> None:
        """Remove an empty bucket's directories (what is left is empty directories only)."""
        shutil.rmtree(s3_meta_dir(self._data_dir, bucket), ignore_errors=True)
        shutil.rmtree(self.bucket_dir(bucket), ignore_errors=True)

    # --- objects --------------------------------------------------------------------------
    def put(
        self, bucket: str, key: str, source: Path, etag: str, attributes: ObjectAttributes
    ) -> ObjectInfo:
        """Make ``source`` (a finished file, moved) the object ``key``, replacing any.

        :raises KilnError: InvalidArgument for a key that is the prefix of an object, or has
            an object as its prefix."""
        path = self.object_path(bucket, key)
        root = self.bucket_dir(bucket)
        for parent in path.relative_to(root).parents:
            if parent != Path(".") and (root / parent).is_file():
                raise _conflict(key, str(parent))
        if path.is_dir():
            raise _conflict(key, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb+") as f:
            os.fsync(f.fileno())
        try:
            os.replace(source, path)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            shutil.move(source, path)
        stat = path.stat()
        self._write_meta(bucket, key, stat, etag, attributes)
        return ObjectInfo(key, stat.st_size, etag, _mtime(stat), attributes)

    def info(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object ``key``, or None if there is none."""
        path = self.object_path(bucket, key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return self._info(bucket, key, path, stat)

    def open(self, bucket: str, key: str) -> tuple[BinaryIO, ObjectInfo] | None:
        """The object ``key`` opened for reading and what it is, or None if there is none.
        (Opened first, so a concurrent replace or delete cannot change what is read.)"""
        path = self.object_path(bucket, key)
        try:
            f = open(path, "rb")  # noqa: SIM115  # the caller (a streamed response) closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        try:
            return f, self._info(bucket, key, path, os.fstat(f.fileno()))
        except BaseException:
            f.close()
            raise

    def delete(self, bucket: str, key: str) -> None:
        """Remove the object ``key`` if there is one (and the directories it leaves empty)."""
        path = self.object_path(bucket, key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            path.unlink()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            self._meta_path(bucket, key).unlink()
        for root, leaf in (
            (self.bucket_dir(bucket), path),
            (s3_meta_dir(self._data_dir, bucket), self._meta_path(bucket, key)),
        ):
            parent = leaf.parent
            while parent != root and root in parent.parents:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def keys(self, bucket: str, prefix: str = "", after: bytes = b"") -> Iterator[str]:
        """Every key of ``bucket`` that starts with ``prefix`` and sorts after ``after`` (UTF-8
        bytes, which need not be a key), in S3's order, walking only the directories that can
        hold one."""
        yield from self._walk(self.bucket_dir(bucket), "", prefix, after)

    def _walk(self, directory: Path, base: str, prefix: str, after: bytes) -> Iterator[str]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        named = []
        for entry in entries:
            if not _utf8_name(entry.name):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and not entry.is_file(follow_symlinks=False):
                continue
            key = base + entry.name + ("/" if is_dir else "")
            named.append((key.encode(), key, is_dir, entry))
        for raw, key, is_dir, entry in sorted(named, key=lambda n: n[0]):
            if not (key.startswith(prefix) or (is_dir and prefix.startswith(key))):
                continue
            if is_dir:
                if raw < after and not after.startswith(raw):
                    continue  # every key below sorts before ``after``
                yield from self._walk(Path(entry.path), key, prefix, after)
            elif raw > after:
                yield key

    # --- metadata -------------------------------------------------------------------------
    def _info(self, bucket: str, key: str, path: Path, stat: os.stat_result) -> ObjectInfo:
        meta = self._meta_path(bucket, key)
        try:
            doc = json.loads(meta.read_text())
            if doc.get("size") == stat.st_size and doc.get("mtime_ns") == stat.st_mtime_ns:
                return ObjectInfo(
                    key,
                    stat.st_size,
                    str(doc["etag"]),
                    _mtime(stat),
                    ObjectAttributes.from_json(doc),
                )
        except (OSError, ValueError, KeyError, TypeError):
            pass
        etag = f'"{_md5_of(path)}"'  # a file put here by an export or by hand
        attributes = ObjectAttributes()
        with contextlib.suppress(OSError):
            self._write_meta(bucket, key, stat, etag, attributes)
        return ObjectInfo(key, stat.st_size, etag, _mtime(stat), attributes)

    def _write_meta(
        self,
        bucket: str,
        key: str,
        stat: os.stat_result,
        etag: str,
        attributes: ObjectAttributes,
    ) -> None:
        meta = self._meta_path(bucket, key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        doc = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "etag": etag}
        doc.update(attributes.to_json())
        tmp = meta.with_name(f".{meta.name}.{secrets.token_hex(6)}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, meta)


def _conflict(key: str, other: str) -> KilnError:
    return KilnError(
        errors.InvalidArgument,
        f"Kiln stores an object as a file at its key: {key[:256]!r} cannot be stored beside "
        f"the object or prefix {other[:256]!r}.",
    )


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(int(stat.st_mtime), UTC)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while piece := f.read(READ_BYTES):
            digest.update(piece)
    return digest.hexdigest()
