"""The chunk codec: how one chunk's bytes become one stored object and back.

Layout (see docs/storage-format.md#chunk-objects)::

    "KLC1" | flags (1 byte) | payload | BLAKE3-128(header + payload)

flags bit 0: payload is a zstd frame; bit 1: payload is AES-256-GCM sealed (nonce || ct || tag).
The chunk id is BLAKE3-256 of the *uncompressed plaintext* (keyed with the data key's id key
when encrypted). Every read re-hashes the plaintext and compares it with the id.
"""

from __future__ import annotations

import threading

import blake3
import zstandard

from kiln import errors
from kiln.errors import KilnError
from kiln.store.crypto import DataKey

MAGIC = b"KLC1"
F_ZSTD = 1
F_SEALED = 2
TRAILER = 16
ZSTD_LEVEL = 1

_local = threading.local()


def _cctx() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
    return c


def _dctx() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def chunk_id(data: bytes | memoryview, key: DataKey | None) -> bytes:
    if key is None:
        return blake3.blake3(data).digest()
    return blake3.blake3(data, key=key.id_key).digest()


def encode(cid: bytes, data: bytes | memoryview, key: DataKey | None) -> bytes:
    """The stored object for a chunk. Incompressible data is kept as it is."""
    packed = _cctx().compress(data)
    flags = F_ZSTD
    if len(packed) >= len(data):
        packed, flags = bytes(data), 0
    if key is not None:
        packed = key.seal(cid, packed)
        flags |= F_SEALED
    header = MAGIC + bytes([flags])
    h = blake3.blake3(header)
    h.update(packed)
    return b"".join((header, packed, h.digest(TRAILER)))


def check_object(blob: bytes) -> bool:
    """Whether the stored bytes are intact (no key needed): the trailer matches."""
    if len(blob) < len(MAGIC) + 1 + TRAILER or blob[:4] != MAGIC:
        return False
    return blake3.blake3(memoryview(blob)[:-TRAILER]).digest(TRAILER) == blob[-TRAILER:]


def intact(cid: bytes, blob: bytes) -> bool:
    """Whether a stored copy of ``cid`` is good as far as can be told without a key: the
    trailer matches, and an unsealed chunk also decodes to its id."""
    if not check_object(blob):
        return False
    if blob[4] & F_SEALED:
        return True
    try:
        decode(cid, blob, None)
    except KilnError:
        return False
    return True


def decode(cid: bytes, blob: bytes | memoryview, key: DataKey | None) -> bytes:
    """The chunk's plaintext, verified against its id. Raises KilnError(StoreCorrupt) if damaged."""
    hexid = cid.hex()
    # The trailer is not checked here: the plaintext hash below (and GCM's tag) catch every
    # damage; verify() checks trailers to find damage without a key.
    if len(blob) < len(MAGIC) + 1 + TRAILER or blob[:4] != MAGIC:
        raise KilnError(errors.StoreCorrupt, f"chunk {hexid} is damaged")
    flags = blob[4]
    payload: bytes | memoryview = memoryview(blob)[5:-TRAILER]
    if flags & F_SEALED:
        if key is None:
            raise KilnError(errors.DecryptionFailed, f"chunk {hexid} is encrypted; a key is needed")
        payload = key.open(cid, payload)
    elif key is not None:
        raise KilnError(errors.StoreCorrupt, f"chunk {hexid} is not encrypted but should be")
    try:
        data = _dctx().decompress(payload) if flags & F_ZSTD else bytes(payload)
    except zstandard.ZstdError as e:
        raise KilnError(errors.StoreCorrupt, f"chunk {hexid} is damaged") from e
    if chunk_id(data, key) != cid:
        raise KilnError(
            errors.StoreCorrupt, f"chunk {hexid} is damaged: it does not match its hash"
        )
    return data
