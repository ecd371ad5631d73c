"""Random valid values for any botocore shape: the one generator the protocol round-trip tests
(tests/aws, tests/ec2) and the hostile-input fuzz test (tests/api) build their input from."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.model import Shape

ALPHABET = string.ascii_letters + string.digits + " =&+.%/~*-_:,;?#[]@!$'()\"<>\\é日本\t\n"
_NESTED = ("structure", "list", "map")


def random_value(shape: Shape, rng: random.Random, depth: int = 0, *, ms: bool = False) -> Any:
    """A value botocore accepts for ``shape``, inside the model's bounds (the edge refuses the
    rest). Lists and maps are never empty (EC2 drops empty lists on the wire), a structure has
    at least one member (an empty one has no wire form), nesting stops growing past depth 4.
    Timestamps have whole microseconds, or whole milliseconds with ``ms`` (what survives the
    XML and JSON wire formats)."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        return _structure(shape, rng, depth, ms)
    if kind == "list":
        count = rng.randint(max(1, meta.get("min", 1)), max(1, min(3, meta.get("max", 3))))
        return [random_value(shape.member, rng, depth + 1, ms=ms) for _ in range(count)]
    if kind == "map":
        return {
            f"k{i}{random_value(shape.key, rng, depth + 1)}"[:20]: random_value(
                shape.value, rng, depth + 1, ms=ms
            )
            for i in range(rng.randint(1, 2))
        }
    if kind == "string":
        if shape.enum:
            return rng.choice(shape.enum)
        length = rng.randint(
            meta.get("min", 0), min(max(meta.get("min", 0), 12), meta.get("max", 12))
        )
        return "".join(rng.choice(ALPHABET) for _ in range(length))
    if kind in ("integer", "long"):
        bits = 31 if kind == "integer" else 40
        return rng.randint(
            max(-(2**bits), meta.get("min", -(2**bits))),
            min(2**bits - 1, meta.get("max", 2**bits - 1)),
        )
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("float", "double"):
        return rng.uniform(meta.get("min", -1e6), meta.get("max", 1e6))
    if kind == "timestamp":
        stamp = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randint(0, 10**9), microseconds=rng.randint(0, 999999)
        )
        return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000) if ms else stamp
    if kind == "blob":
        return rng.randbytes(rng.randint(0, 40))
    raise AssertionError(kind)


def _structure(shape: Shape, rng: random.Random, depth: int, ms: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        nested = member.type_name in _NESTED
        if name in shape.required_members or (rng.random() < 0.6 and not (nested and depth > 4)):
            out[name] = random_value(member, rng, depth + 1, ms=ms)
    if not out and shape.members:
        name = min(shape.members, key=lambda n: shape.members[n].type_name in _NESTED)
        out[name] = random_value(shape.members[name], rng, depth + 1, ms=ms)
    return out
