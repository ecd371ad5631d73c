"""Stream a request payload to a file, checking it as it arrives (S3's object bodies).

The edge (kiln/aws/edge.py) hands a streaming payload here after SigV4 has checked the request's
headers (``verify_sigv4(body=None)``); the body is written to a new file in the spool directory,
in batches written and hashed off the event loop, so an object of any size never sits in memory.
What the request claimed is then checked, in S3's codes:

| claim | check |
|---|---|
| ``x-amz-content-sha256`` a hex SHA-256 | the body's SHA-256 (``XAmzContentSHA256Mismatch``) |
| ``UNSIGNED-PAYLOAD`` | none |
| ``STREAMING-…`` (``Content-Encoding: aws-chunked``) | each chunk's signature (kiln/aws/chunked.py); ``x-amz-decoded-content-length`` (``IncompleteBody``) |
| ``Content-MD5`` | the MD5 (``BadDigest``; not base64 of 16 bytes: ``InvalidDigest``) |
| ``x-amz-checksum-crc32`` / ``-sha1`` / ``-sha256``, as a header or a trailer | that checksum (``BadDigest``) |

Other checksum algorithms (CRC32C, CRC64NVME) are ``InvalidRequest``: Kiln cannot verify them.
A body larger than ``max_bytes`` is ``EntityTooLarge``. On any failure the file is removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
import zlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from kiln import errors
from kiln.aws.chunked import ChunkedDecoder
from kiln.aws.sigv4 import STREAMING_FORMS, UNSIGNED_PAYLOAD, PayloadClaim
from kiln.aws.wire import SpooledBody
from kiln.errors import KilnError

BATCH_BYTES = 1024 * 1024
CHECKSUM_PREFIX = "x-amz-checksum-"
VERIFIED = ("crc32", "sha1", "sha256")


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _digest(algorithm: str) -> _Digest:
    if algorithm == "crc32":
        return _Crc32()
    return hashlib.new(algorithm)


def _checksums_asked(headers: Mapping[str, str]) -> set[str]:
    """The algorithms the request sends a checksum of, in a header or announced as a trailer."""
    names = {k[len(CHECKSUM_PREFIX) :] for k in headers if k.startswith(CHECKSUM_PREFIX)}
    names.discard("type")  # x-amz-checksum-type: FULL_OBJECT / COMPOSITE, not a value
    for trailer in headers.get("x-amz-trailer", "").split(","):
        trailer = trailer.strip().lower()
        if trailer.startswith(CHECKSUM_PREFIX):
            names.add(trailer[len(CHECKSUM_PREFIX) :])
    unknown = sorted(names - set(VERIFIED))
    if unknown:
        raise KilnError(
            errors.InvalidRequest,
            f"Kiln cannot verify x-amz-checksum-{unknown[0][:32]}; "
            f"send one of {', '.join(VERIFIED)} (or none).",
        )
    return names


class _Sink:
    """The spool file and the digests of what was written to it."""

    def __init__(self, directory: Path, algorithms: set[str], sha256: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="body-", suffix=".part")
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256() if sha256 else None
        self.checksums = {a: _digest(a) for a in algorithms}
        self.size = 0

    def write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.file.write(piece)
            self.md5.update(piece)
            if self.sha256 is not None:
                self.sha256.update(piece)
            for digest in self.checksums.values():
                digest.update(piece)
            self.size += len(piece)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


async def spool_body(
    chunks: AsyncIterator[bytes],
    directory: Path,
    claim: PayloadClaim,
    headers: Mapping[str, str],
    max_bytes: int,
) -> SpooledBody:
    """The request body from ``chunks`` as a new file in ``directory``, checked against
    ``claim`` and the request's digest headers (``headers`` lower-cased).

    :raises KilnError: as the table in this module's docstring says."""
    algorithms = _checksums_asked(headers)
    form = claim.content_sha256
    decoder = ChunkedDecoder(form, claim.seed) if form in STREAMING_FORMS else None
    hashed = decoder is None and form != UNSIGNED_PAYLOAD
    sink = await run_in_threadpool(_Sink, directory, algorithms, hashed)
    try:
        batch: list[bytes] = []
        pending = 0
        async for received in chunks:
            pieces = decoder.feed(received) if decoder is not None else [received]
            batch.extend(pieces)
            pending += sum(len(p) for p in pieces)
            if sink.size + pending > max_bytes:
                raise KilnError(
                    errors.EntityTooLarge,
                    f"Your proposed upload exceeds the maximum allowed size ({max_bytes} bytes).",
                )
            if pending >= BATCH_BYTES:
                await run_in_threadpool(sink.write, batch)
                batch, pending = [], 0
        await run_in_threadpool(sink.write, batch)
        await run_in_threadpool(sink.file.close)
        trailers = decoder.close() if decoder is not None else {}
        _check(sink, form, decoder is not None, headers, trailers)
    except BaseException:
        await run_in_threadpool(sink.discard)
        raise
    checksums = {a: base64.b64encode(d.digest()).decode() for a, d in sink.checksums.items()}
    return SpooledBody(sink.path, sink.size, sink.md5.hexdigest(), checksums)


def _check(
    sink: _Sink, form: str, chunked: bool, headers: Mapping[str, str], trailers: Mapping[str, str]
) -> None:
    if sink.sha256 is not None and sink.sha256.hexdigest() != form:
        raise KilnError(
            errors.ContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    decoded = headers.get("x-amz-decoded-content-length")
    if chunked and decoded is not None and decoded.strip() != str(sink.size):
        raise KilnError(
            errors.IncompleteBody,
            f"You did not provide the number of bytes specified by the "
            f"x-amz-decoded-content-length header ({decoded[:20]}; got {sink.size}).",
        )
    md5 = headers.get("content-md5")
    if md5 is not None:
        try:
            claimed = base64.b64decode(md5.strip(), validate=True)
        except binascii.Error:
            claimed = b""
        if len(claimed) != 16:
            raise KilnError(errors.InvalidDigest, "The Content-MD5 you specified is not valid.")
        if claimed != sink.md5.digest():
            raise KilnError(
                errors.BadDigest, "The Content-MD5 you specified did not match what we received."
            )
    for algorithm, digest in sink.checksums.items():
        name = CHECKSUM_PREFIX + algorithm
        sent = trailers.get(name, headers.get(name))
        if sent is None:
            raise KilnError(
                errors.InvalidRequest, f"The {name} announced in x-amz-trailer was not sent."
            )
        if sent.strip() != base64.b64encode(digest.digest()).decode():
            raise KilnError(
                errors.BadDigest,
                f"The {algorithm.upper()} you specified did not match the calculated checksum.",
            )
