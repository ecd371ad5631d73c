"""A real LUKS1 volume for the disk-safety tests, made by cryptsetup.

Not qemu-img: its LUKS creation benchmarks the key derivation by thread CPU time and fails
("Unable to get accurate CPU usage") where that cannot be measured, as in some sandboxes.
cryptsetup takes a fixed iteration count and benchmarks nothing. qemu-img identifies the
result as ``luks`` like its own (tests check that).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def luks_volume(path: Path, size: int = 4 * 1024 * 1024) -> bytes:
    """Format ``path`` (``size`` bytes) as LUKS1 under a test passphrase; its bytes."""
    key = path.with_suffix(".key")
    key.write_bytes(b"kiln-test")
    with path.open("wb") as f:
        f.truncate(size)
    subprocess.run(
        [
            "cryptsetup", "luksFormat", "--type", "luks1", "--pbkdf", "pbkdf2",
            "--pbkdf-force-iterations", "1000", "--batch-mode", "--key-file", str(key), str(path),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    data = path.read_bytes()
    assert data.startswith(b"LUKS\xba\xbe")
    return data
