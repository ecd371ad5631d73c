"""Encryption at rest: nothing readable without the key; dedup within one key."""

from __future__ import annotations

import os
from pathlib import Path

from store_helpers import make_disk, same_bytes

MARKER = b"KILN-PLAINTEXT-MARKER-" * 200


def _key(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    p.write_text(os.urandom(32).hex())
    return p


def test_encrypted_snapshot_round_trip_and_no_plaintext_on_disk(
    kiln, tmp_path: Path, data_dir: Path
) -> None:
    disk = make_disk(tmp_path / "d.raw", 8 << 20, [(4096, MARKER), (3 << 20, MARKER)])
    key = _key(tmp_path, "k1")
    sid = kiln("snapshot", "import", str(disk), "--key-file", str(key), "--json").json()[
        "snapshot_id"
    ]
    for f in (data_dir / "regions").rglob("*"):
        if f.is_file():
            assert b"KILN-PLAINTEXT-MARKER" not in f.read_bytes(), f
    out = tmp_path / "out.raw"
    kiln("snapshot", "export", sid, str(out), "--key-file", str(key))
    assert same_bytes(disk, out)
    kiln("store", "verify", "--key-file", str(key))


def test_wrong_or_missing_key_fails_cleanly(kiln, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "d.raw", 4 << 20, [(0, MARKER)])
    key = _key(tmp_path, "k1")
    sid = kiln("snapshot", "import", str(disk), "--key-file", str(key), "--json").json()[
        "snapshot_id"
    ]
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    wrong_key = _key(wrong, "k1")  # same key id, other secret
    out = tmp_path / "out.raw"
    r = kiln("snapshot", "export", sid, str(out), "--key-file", str(wrong_key), check=False)
    assert r.rc != 0 and "key" in r.err.lower() and len(r.err.strip().splitlines()) == 1
    r = kiln("snapshot", "export", sid, str(out), check=False)
    assert r.rc != 0 and "encrypted" in r.err
    assert not out.exists()


def test_dedup_within_one_key_but_not_across_keys(kiln, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "d.raw", 4 << 20, [(0, os.urandom(2 << 20))])
    k1, k2 = _key(tmp_path, "k1"), _key(tmp_path, "k2")
    a = kiln("snapshot", "import", str(disk), "--key-file", str(k1), "--json").json()
    b = kiln("snapshot", "import", str(disk), "--key-file", str(k1), "--json").json()
    c = kiln("snapshot", "import", str(disk), "--key-file", str(k2), "--json").json()
    assert a["new_chunks"] > 0 and b["new_chunks"] == 0
    assert c["new_chunks"] == a["new_chunks"]
