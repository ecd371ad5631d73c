"""Objects as files: the walk lists keys in S3's order (UTF-8 bytes), filtered and resumed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kiln.errors import KilnError
from kiln.runtime.bucket_files import BucketFiles, ObjectAttributes

ALPHABET = ["a", "b", "-", ".", "~", "A", "0", "é", "ü", "+", " ", "z"]


def _keys(rng: random.Random, n: int) -> list[str]:
    keys: set[str] = set()
    while len(keys) < n:
        depth = rng.randint(1, 3)
        parts = [
            "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3))) for _ in range(depth)
        ]
        key = "/".join(parts)
        if any(p in (".", "..") for p in parts):
            continue
        # a key may not be both an object and a prefix of one
        if any(k.startswith(key + "/") or key.startswith(k + "/") for k in keys):
            continue
        keys.add(key)
    return sorted(keys, key=lambda k: k.encode())


@pytest.mark.parametrize("seed", range(5))
def test_keys_walk_in_s3_order_with_prefix_and_after(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    files = BucketFiles(tmp_path)
    files.make_bucket("bkt")
    keys = _keys(rng, 60)
    for key in keys:
        body = tmp_path / "body"
        body.write_bytes(key.encode())
        files.put("bkt", key, body, '"x"', ObjectAttributes())
    assert list(files.keys("bkt")) == keys
    for _ in range(20):
        prefix = rng.choice(keys)[: rng.randint(0, 3)]
        after = rng.choice(keys).encode()[: rng.randint(0, 6)]
        expected = [k for k in keys if k.startswith(prefix) and k.encode() > after]
        assert list(files.keys("bkt", prefix, after)) == expected, (prefix, after)
    victim = keys[len(keys) // 2]
    files.delete("bkt", victim)
    assert list(files.keys("bkt")) == [k for k in keys if k != victim]


def test_a_file_put_by_hand_gets_its_md5_as_etag(tmp_path: Path) -> None:
    files = BucketFiles(tmp_path)
    files.make_bucket("bkt")
    (files.bucket_dir("bkt") / "export.raw").write_bytes(b"hello")
    info = files.info("bkt", "export.raw")
    assert info is not None and info.etag == '"5d41402abc4b2a76b9719d911017c592"'
    assert info.attributes.content_type == "binary/octet-stream"
    (files.bucket_dir("bkt") / "export.raw").write_bytes(b"hello, again")  # rewritten: stale
    again = files.info("bkt", "export.raw")
    assert again is not None and again.etag != info.etag


@pytest.mark.parametrize("key", ["", "a//b", "a/", "/a", "./a", "a/../b", "a\x00b", "x" * 256])
def test_keys_that_are_not_paths_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(KilnError):
        BucketFiles(tmp_path).object_path("bkt", key)
