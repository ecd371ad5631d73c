"""Decode ``Content-Encoding: aws-chunked`` bodies (SigV4 streaming uploads), incrementally.

S3 clients that cannot hash a body before sending it (or want a trailing checksum) send it in
chunks, as AWS specifies (sigv4-streaming, sigv4-streaming-trailers):

```
STREAMING-AWS4-HMAC-SHA256-PAYLOAD           <hex size>;chunk-signature=<sig>\\r\\n<data>\\r\\n … 0;chunk-signature=<sig>\\r\\n\\r\\n
STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER   … 0;chunk-signature=<sig>\\r\\n<name>:<value>\\r\\nx-amz-trailer-signature:<sig>\\r\\n\\r\\n
STREAMING-UNSIGNED-PAYLOAD-TRAILER           <hex size>\\r\\n<data>\\r\\n … 0\\r\\n<name>:<value>\\r\\n\\r\\n
```

Each chunk signature chains from the previous one, starting with the request's seed signature
(the ``Authorization`` header's, already verified by kiln/aws/sigv4.py): HMAC-SHA256 under the
request's signing key of ``AWS4-HMAC-SHA256-PAYLOAD\\n<amz date>\\n<scope>\\n<previous
signature>\\n<SHA-256 of "">\\n<SHA-256 of the chunk's data>``; the trailer's signature is
``AWS4-HMAC-SHA256-TRAILER\\n<amz date>\\n<scope>\\n<previous signature>\\n<SHA-256 of the
trailer lines>``. A chunk is checked when its last byte has arrived; the data before it has
already been handed on, so a caller writes it somewhere it can throw away (the edge's spool
file). A broken signature is ``AuthFailure``; broken framing ``IncompleteBody``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from kiln import errors
from kiln.aws.sigv4 import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, StreamSeed
from kiln.errors import KilnError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_LINE = 4096
MAX_CHUNK = 64 * 1024 * 1024
_SIGNED_HEAD = re.compile(rb"([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})")
_UNSIGNED_HEAD = re.compile(rb"([0-9a-fA-F]{1,16})(;[^\r\n]*)?")
_TRAILER = re.compile(rb"([A-Za-z0-9-]{1,128}):[ \t]*([\x21-\x7e]{0,512})[ \t]*")


def _broken(what: str) -> KilnError:
    return KilnError(errors.IncompleteBody, f"The aws-chunked request body is malformed: {what}.")


def _bad_signature() -> KilnError:
    return KilnError(
        errors.AuthFailure,
        "The request signature we calculated does not match the signature you provided "
        "(a chunk signature of the aws-chunked body).",
    )


class ChunkedDecoder:
    """One aws-chunked body of the ``form`` its ``x-amz-content-sha256`` names; ``seed`` for
    the signed forms. :meth:`feed` returns the decoded data so far, :meth:`close` the trailing
    headers (lower-cased names)."""

    def __init__(self, form: str, seed: StreamSeed | None) -> None:
        self._signed = form in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        self._trailer_signed = form == STREAMING_SIGNED_TRAILER
        if self._signed and seed is None:
            raise ValueError("a signed aws-chunked body needs the request's seed")
        self._seed = seed
        self._previous = seed.signature if seed is not None else ""
        self._buffer = bytearray()
        self._state = "head"
        self._remaining = 0
        self._chunk_signature = ""
        self._hash = hashlib.sha256()
        self._trailer_lines: list[bytes] = []
        self.trailers: dict[str, str] = {}
        self.decoded = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The data of ``data`` (with what earlier calls left over), chunk framing removed.

        :raises KilnError: IncompleteBody for broken framing, AuthFailure for a chunk whose
            signature does not match."""
        out: list[bytes] = []
        view = memoryview(data)
        while view:
            if self._state == "data":
                take = view[: self._remaining]
                if self._signed:
                    self._hash.update(take)
                out.append(bytes(take))
                self._remaining -= len(take)
                self.decoded += len(take)
                view = view[len(take) :]
                if self._remaining == 0:
                    self._end_of_chunk_data()
                continue
            if self._state == "done":
                raise _broken("data after the final chunk")
            newline = bytes(view[: MAX_LINE + 2]).find(b"\n")
            if newline < 0:
                self._buffer += view
                if len(self._buffer) > MAX_LINE:
                    raise _broken("a line longer than 4096 bytes")
                break
            self._buffer += view[: newline + 1]
            view = view[newline + 1 :]
            line = bytes(self._buffer)
            self._buffer.clear()
            if not line.endswith(b"\r\n"):
                raise _broken("a line not ended by CRLF")
            self._line(line[:-2])
        return out

    def close(self) -> dict[str, str]:
        """The trailing headers, once the body is complete.

        :raises KilnError: IncompleteBody if the body ended before its final chunk."""
        if self._state != "done":
            raise _broken("the body ended before its final chunk")
        return self.trailers

    def _line(self, line: bytes) -> None:
        if self._state == "head":
            self._head(line)
        elif self._state == "data-end":
            if line:
                raise _broken("chunk data longer than its size")
            self._state = "head"
        elif self._state == "trailer":
            self._trailer(line)

    def _head(self, line: bytes) -> None:
        found = (_SIGNED_HEAD if self._signed else _UNSIGNED_HEAD).fullmatch(line)
        if found is None:
            raise _broken(f"a chunk header {line[:80]!r}")
        size = int(found.group(1), 16)
        if size > MAX_CHUNK:
            raise _broken(f"a chunk of {size} bytes (at most {MAX_CHUNK})")
        self._chunk_signature = found.group(2).decode() if self._signed else ""
        self._hash = hashlib.sha256()
        self._remaining = size
        if size:
            self._state = "data"
            return
        self._verify_chunk()  # the final, empty chunk
        self._state = "trailer"

    def _end_of_chunk_data(self) -> None:
        self._verify_chunk()
        self._state = "data-end"

    def _verify_chunk(self) -> None:
        if not self._signed:
            return
        digest = self._hash.hexdigest()
        expected = self._sign("AWS4-HMAC-SHA256-PAYLOAD", f"{EMPTY_SHA256}\n{digest}")
        if not hmac.compare_digest(expected, self._chunk_signature):
            raise _bad_signature()
        self._previous = expected

    def _trailer(self, line: bytes) -> None:
        if not line:
            if self._trailer_signed:
                raise _broken("a trailer without x-amz-trailer-signature")
            self._state = "done"
            return
        found = _TRAILER.fullmatch(line)
        if found is None:
            raise _broken(f"a trailer line {line[:80]!r}")
        name, value = found.group(1).decode().lower(), found.group(2).decode()
        if name == "x-amz-trailer-signature" and self._trailer_signed:
            canonical = b"".join(self._trailer_lines)
            expected = self._sign("AWS4-HMAC-SHA256-TRAILER", hashlib.sha256(canonical).hexdigest())
            if not hmac.compare_digest(expected, value):
                raise _bad_signature()
            self._trailer_signed = False  # the blank line that follows ends the body
            return
        self._trailer_lines.append(f"{name}:{value}\n".encode())
        self.trailers[name] = value

    def _sign(self, algorithm: str, tail: str) -> str:
        seed = self._seed
        assert seed is not None  # only signed forms sign
        text = f"{algorithm}\n{seed.amz_date}\n{seed.scope}\n{self._previous}\n{tail}"
        return hmac.new(seed.key, text.encode(), hashlib.sha256).hexdigest()
