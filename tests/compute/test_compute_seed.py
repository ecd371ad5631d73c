"""NoCloud seeds, read back with tools that do not share our code (isoinfo, mtools)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kiln import errors
from kiln.compute.seed import USER_DATA_LIMIT, make_nocloud_seed
from kiln.errors import KilnError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0d8mFJv4eYQn0P6d1qkQ0b0Xo7p0l8s3q2d1a0b9c me@host"
USER_DATA = b"#!/bin/sh\necho hello > /root/hello.txt\n"


def _iso_file(iso: Path, name: str) -> bytes:
    return subprocess.run(
        ["isoinfo", "-R", "-i", str(iso), "-x", f"/{name}"], check=True, capture_output=True
    ).stdout


def test_iso9660_seed_has_cidata_label_meta_data_and_user_data(tmp_path: Path) -> None:
    iso = make_nocloud_seed(tmp_path / "seed.iso", "i-0123456789abcdef0", "web-1", [KEY], USER_DATA)
    info = subprocess.run(
        ["isoinfo", "-d", "-i", str(iso)], check=True, capture_output=True, text=True
    ).stdout
    assert "Volume id: cidata" in info
    assert _iso_file(iso, "user-data") == USER_DATA
    assert _iso_file(iso, "meta-data").decode() == (
        f'instance-id: i-0123456789abcdef0\nlocal-hostname: web-1\npublic-keys:\n  - "{KEY}"\n'
    )


def test_vfat_seed_has_cidata_label_and_files(tmp_path: Path) -> None:
    img = make_nocloud_seed(
        tmp_path / "seed.img", "i-1", "b", [KEY, KEY.replace("me@", "you@")], None, fmt="vfat"
    )
    label = subprocess.run(
        ["mlabel", "-s", "-i", str(img), "::"], check=True, capture_output=True, text=True
    ).stdout
    assert "CIDATA" in label.upper()
    meta = subprocess.run(
        ["mtype", "-i", str(img), "::/meta-data"], check=True, capture_output=True, text=True
    ).stdout
    assert meta.count("  - ") == 2 and "you@host" in meta
    user = subprocess.run(
        ["mtype", "-i", str(img), "::/user-data"], check=True, capture_output=True
    ).stdout
    assert user == b""


def test_seed_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "seed.iso"
    make_nocloud_seed(path, "i-1", "a", [], b"one")
    make_nocloud_seed(path, "i-1", "a", [], b"two")
    assert _iso_file(path, "user-data") == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.iso"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"user_data": b"x" * (USER_DATA_LIMIT + 1)}, errors.InvalidParameterValue),
        ({"public_keys": ["not a key"]}, errors.InvalidKeyFormat),
        ({"public_keys": [KEY + ' "quoted"']}, errors.InvalidKeyFormat),
        ({"instance_id": "i-1; rm -rf /"}, errors.InvalidParameterValue),
        ({"hostname": "bad_host name"}, errors.InvalidParameterValue),
        ({"fmt": "ext4"}, errors.InvalidParameterValue),
    ],
)
def test_bad_seed_input_is_refused_and_writes_nothing(
    tmp_path: Path, kwargs: dict[str, object], code: errors.ErrorCode
) -> None:
    args: dict[str, object] = {
        "instance_id": "i-1",
        "hostname": "h",
        "public_keys": [KEY],
        "user_data": None,
    }
    args.update(kwargs)
    with pytest.raises(KilnError) as e:
        make_nocloud_seed(tmp_path / "seed.iso", **args)  # type: ignore[arg-type]
    assert e.value.code == code
    assert list(tmp_path.iterdir()) == []


def test_user_data_at_the_limit_is_accepted(tmp_path: Path) -> None:
    data = b"#!/bin/sh\n" + b"#" * (USER_DATA_LIMIT - 10)
    iso = make_nocloud_seed(tmp_path / "seed.iso", "i-1", "h", [], data)
    assert _iso_file(iso, "user-data") == data
