"""aws-chunked bodies (SigV4 streaming uploads): AWS's own worked example, and broken ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib

import pytest

from kiln.aws.chunked import ChunkedDecoder
from kiln.aws.sigv4 import (
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    StreamSeed,
)
from kiln.errors import KilnError

# The example of AWS's "Signature Calculations for the Authorization Header: Transferring
# Payload in Multiple Chunks" (sigv4-streaming): 66560 bytes of "a" in chunks of 64 KiB and 1 KiB.
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def signing_key(secret: str = SECRET) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in ("20130524", "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def seed() -> StreamSeed:
    return StreamSeed(signing_key(), AMZ_DATE, SCOPE, SEED)


def example_body(signatures: list[str] = CHUNK_SIGNATURES) -> bytes:
    return (
        b"10000;chunk-signature=" + signatures[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
        b"400;chunk-signature=" + signatures[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
        b"0;chunk-signature=" + signatures[2].encode() + b"\r\n\r\n"
    )


def decode(decoder: ChunkedDecoder, body: bytes, step: int) -> bytes:
    out = b"".join(b"".join(decoder.feed(body[i : i + step])) for i in range(0, len(body), step))
    decoder.close()
    return out


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_aws_example_decodes_in_any_pieces(step: int) -> None:
    decoder = ChunkedDecoder(STREAMING_SIGNED, seed())
    assert decode(decoder, example_body(), step) == b"a" * 66560
    assert decoder.decoded == 66560


def test_a_changed_byte_or_signature_or_reordered_chunks_fail() -> None:
    body = example_body()
    tampered = body.replace(b"a" * 1024, b"a" * 1023 + b"b")
    for broken in (
        tampered,
        example_body([CHUNK_SIGNATURES[0], CHUNK_SIGNATURES[2], CHUNK_SIGNATURES[1]]),
        example_body([CHUNK_SIGNATURES[1], CHUNK_SIGNATURES[0], CHUNK_SIGNATURES[2]]),
    ):
        with pytest.raises(KilnError) as e:
            decode(ChunkedDecoder(STREAMING_SIGNED, seed()), broken, 4096)
        assert e.value.code.code == "AuthFailure"
    other = StreamSeed(signing_key("another secret"), AMZ_DATE, SCOPE, SEED)
    with pytest.raises(KilnError):
        decode(ChunkedDecoder(STREAMING_SIGNED, other), body, 4096)


@pytest.mark.parametrize(
    "body",
    [
        example_body()[:-2],  # no final CRLF
        example_body()[:60000],  # cut short
        example_body() + b"x",  # data after the final chunk
        b"zz;chunk-signature=" + CHUNK_SIGNATURES[0].encode() + b"\r\n",
        b"10000" + b" " * 5000,
    ],
)
def test_broken_framing_is_incomplete_body(body: bytes) -> None:
    with pytest.raises(KilnError) as e:
        decode(ChunkedDecoder(STREAMING_SIGNED, seed()), body, 4096)
    assert e.value.code.code == "IncompleteBody"


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_unsigned_trailer_as_botocore_writes_it() -> None:
    data = b"hello world" * 1000
    body = (
        f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
        b"x-amz-checksum-crc32:" + crc32(data).encode() + b"\r\n\r\n"
    )
    decoder = ChunkedDecoder(STREAMING_UNSIGNED_TRAILER, None)
    assert decode(decoder, body, 100) == data
    assert decoder.trailers == {"x-amz-checksum-crc32": crc32(data)}


def _sign(key: bytes, algorithm: str, previous: str, tail: str) -> str:
    text = f"{algorithm}\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{tail}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def test_signed_trailer_is_verified() -> None:
    key, empty = signing_key(), hashlib.sha256(b"").hexdigest()
    data = b"x" * 5000
    first = _sign(
        key, "AWS4-HMAC-SHA256-PAYLOAD", SEED, f"{empty}\n{hashlib.sha256(data).hexdigest()}"
    )
    final = _sign(key, "AWS4-HMAC-SHA256-PAYLOAD", first, f"{empty}\n{empty}")
    trailer = f"x-amz-checksum-crc32:{crc32(data)}\n".encode()
    trailer_sig = _sign(key, "AWS4-HMAC-SHA256-TRAILER", final, hashlib.sha256(trailer).hexdigest())

    def body(signature: str) -> bytes:
        return (
            f"{len(data):x};chunk-signature={first}\r\n".encode()
            + data
            + b"\r\n"
            + f"0;chunk-signature={final}\r\n".encode()
            + trailer.rstrip(b"\n")
            + b"\r\n"
            + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()
        )

    decoder = ChunkedDecoder(STREAMING_SIGNED_TRAILER, StreamSeed(key, AMZ_DATE, SCOPE, SEED))
    assert decode(decoder, body(trailer_sig), 333) == data
    assert decoder.trailers["x-amz-checksum-crc32"] == crc32(data)
    with pytest.raises(KilnError) as e:
        decode(
            ChunkedDecoder(STREAMING_SIGNED_TRAILER, StreamSeed(key, AMZ_DATE, SCOPE, SEED)),
            body(first),
            333,
        )
    assert e.value.code.code == "AuthFailure"
