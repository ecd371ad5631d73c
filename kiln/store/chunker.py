"""Chunk boundaries: fixed-size (aligned to absolute offsets) or content-defined (FastCDC).

The choice is made once per store (its ``config`` object) because ids only dedup between
snapshots cut the same way. See docs/storage-format.md#chunking for the measurements behind the
default.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyfastcdc.cy import FastCDC


@dataclass(frozen=True, slots=True)
class ChunkerConfig:
    kind: str  # "fixed" | "fastcdc"
    avg: int
    min: int = 0
    max: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "avg": self.avg, "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ChunkerConfig:
        return cls(str(d["kind"]), int(d["avg"]), int(d.get("min", 0)), int(d.get("max", 0)))  # type: ignore[call-overload]  # JSON numbers

    @property
    def max_chunk(self) -> int:
        return self.avg if self.kind == "fixed" else self.max


DEFAULT_CHUNKER = ChunkerConfig("fastcdc", avg=32 * 1024, min=8 * 1024, max=128 * 1024)


class Chunker:
    """``cut(buf, base, final)`` returns the lengths of the chunks at the start of ``buf``
    (whose first byte is disk offset ``base``). With ``final`` they cover all of ``buf``;
    otherwise the tail whose boundary is not yet known is left for the next call."""

    def __init__(self, config: ChunkerConfig) -> None:
        self.config = config
        if config.kind == "fastcdc":
            self._cdc = FastCDC(avg_size=config.avg, min_size=config.min, max_size=config.max)
        elif config.kind != "fixed":
            raise ValueError(f"unknown chunker {config.kind}")

    def cut(self, buf: bytes | bytearray | memoryview, base: int, final: bool) -> list[int]:
        n = len(buf)
        if n == 0:
            return []
        if self.config.kind == "fixed":
            size = self.config.avg
            lengths = []
            pos = 0
            first = size - (base % size)
            if first < size:
                lengths.append(min(first, n))
                pos = lengths[0]
            while n - pos >= size:
                lengths.append(size)
                pos += size
            if final and pos < n:
                lengths.append(n - pos)
            return lengths
        lengths = [c.length for c in self._cdc.cut_buf(buf)]
        if not final and lengths:
            lengths.pop()
        return lengths
