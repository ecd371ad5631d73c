"""The NoCloud seed: a small disk labelled ``cidata`` holding ``meta-data`` and ``user-data``.

The same seed serves the micro image's init (kiln/bake/files/instance-boot) and cloud-init
(Debian image): ``meta-data`` is YAML with ``instance-id``, ``local-hostname`` and a
``public-keys`` list (which cloud-init's NoCloud datasource reads too); ``user-data`` is passed
through byte for byte. Formats: iso9660 (``genisoimage -V cidata``, as cloud-localds makes) or
vfat (``mkfs.vfat -n cidata`` + ``mcopy``); neither needs mounting.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

USER_DATA_LIMIT = 16 * 1024  # EC2's limit on (decoded) user data
SEED_FORMATS = ("iso9660", "vfat")
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PUBLIC_KEY = re.compile(
    r"^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) "
    r"[A-Za-z0-9+/]+=*( [\x20-\x7e]*)?$"
)


def meta_data(instance_id: str, hostname: str, public_keys: list[str]) -> str:
    """The ``meta-data`` document. Keys are written as double-quoted YAML (JSON) strings."""
    if not _INSTANCE_ID.match(instance_id):
        raise KilnError(errors.InvalidParameterValue, f"invalid instance id {instance_id!r}")
    if not _HOSTNAME.match(hostname):
        raise KilnError(errors.InvalidParameterValue, f"invalid hostname {hostname!r}")
    lines = [f"instance-id: {instance_id}", f"local-hostname: {hostname}"]
    if public_keys:
        lines.append("public-keys:")
    for key in public_keys:
        key = key.strip()
        if not _PUBLIC_KEY.match(key) or '"' in key or "\\" in key:
            raise KilnError(
                errors.InvalidKeyFormat, "Key is not in valid OpenSSH public key format"
            )
        lines.append(f"  - {json.dumps(key)}")
    return "\n".join(lines) + "\n"


def _run(argv: list[str]) -> None:
    tool = shutil.which(
        argv[0], path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )
    if tool is None:
        raise KilnError(errors.InternalError, f"seed: {argv[0]} not found (scripts/install)")
    proc = subprocess.run([tool, *argv[1:]], capture_output=True, check=False)
    if proc.returncode != 0:
        raise KilnError(
            errors.InternalError,
            f"seed: {argv[0]} failed: {proc.stderr.decode(errors='replace').strip()}",
        )


def make_nocloud_seed(
    path: Path,
    instance_id: str,
    hostname: str,
    public_keys: list[str],
    user_data: bytes | None,
    fmt: str = "iso9660",
) -> Path:
    """Write the seed image ``path`` (replaced atomically) and return it.

    Raises ``KilnError``: ``InvalidParameterValue`` for a bad id / hostname, user data over
    16 KiB or an unknown ``fmt``; ``InvalidKey.Format`` for a malformed public key.
    """
    if fmt not in SEED_FORMATS:
        raise KilnError(errors.InvalidParameterValue, f"seed format {fmt!r} not in {SEED_FORMATS}")
    user_data = user_data or b""
    if len(user_data) > USER_DATA_LIMIT:
        raise KilnError(
            errors.InvalidParameterValue, f"User data is limited to {USER_DATA_LIMIT} bytes"
        )
    meta = meta_data(instance_id, hostname, public_keys).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".seed-") as d:
        src = Path(d)
        (src / "meta-data").write_bytes(meta)
        (src / "user-data").write_bytes(user_data)
        files = [str(src / "meta-data"), str(src / "user-data")]
        if fmt == "iso9660":
            _run(
                [
                    "genisoimage",
                    "-quiet",
                    "-output",
                    str(tmp),
                    "-volid",
                    "cidata",
                    "-joliet",
                    "-rock",
                    *files,
                ]
            )
        else:
            _run(["mkfs.vfat", "-C", "-n", "CIDATA", str(tmp), "1024"])
            _run(["mcopy", "-i", str(tmp), *files, "::/"])
    tmp.replace(path)
    log.debug("seed %s for %s (%s)", path, instance_id, fmt)
    return path
