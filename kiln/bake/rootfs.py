"""The micro image's root filesystem, laid out in a directory for ``mke2fs -d``.

Busybox (static) provides init, the shell and the tools; dropbear (with the shared libraries
``ldd`` names) the SSH server. The scripts are text files in ``kiln/bake/files``. Nothing
instance-specific is baked in: no host key, no authorized keys (see files/instance-boot).
"""

from __future__ import annotations

import re
import shutil
from importlib.resources import files
from pathlib import Path

from kiln.bake.tools import run, which

FILES = files("kiln.bake") / "files"

# (path in the image, file in kiln/bake/files, mode)
SCRIPTS = (
    ("etc/inittab", "inittab", 0o644),
    ("etc/init.d/rcS", "rcS", 0o755),
    ("etc/init.d/rcK", "rcK", 0o755),
    ("etc/acpi/PWRF/00000080", "acpi-power-button", 0o755),
    ("usr/share/udhcpc/default.script", "udhcpc.script", 0o755),
    ("usr/lib/kiln/instance-boot", "instance-boot", 0o755),
)
DIRS = (
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "lib",
    "lib64",
    "etc/init.d",
    "etc/dropbear",
    "dev",
    "proc",
    "sys",
    "run",
    "mnt",
    "var/log",
    "var/lib/kiln",
    "home",
)
TEXT = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\ntty:x:5:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\n",
    "etc/shells": "/bin/sh\n/bin/ash\n",
    "etc/hostname": "kiln-micro\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n",
    "etc/profile": "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\h:\\w\\$ '\n",
}
_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)")


def _copy_file(src: Path, dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)  # follows symlinks: the library itself, under the linked name
    dest.chmod(mode)


def _shared_libraries(binary: Path) -> list[Path]:
    """The libraries (and the loader) ``binary`` needs, as ``ldd`` prints them."""
    out = run(["ldd", binary]).decode()
    return [Path(m.group(1)) for m in _LDD_PATH.finditer(out)]


def _install_busybox(root: Path) -> None:
    busybox = which("busybox")
    _copy_file(busybox, root / "bin/busybox", 0o755)
    for applet in run([busybox, "--list-full"]).decode().split():
        link = root / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")


#: The SSH server and what file-copying clients call on it: OpenSSH's ``scp`` (the remote end
#: of a legacy ``scp -O``) and ``sftp-server`` (OpenSSH 9's scp, sftp, paramiko's SFTP, Packer's
#: file provisioner) at the path dropbear runs for the ``sftp`` subsystem.
SSH_TOOLS = (
    ("dropbear", "usr/sbin/dropbear"),
    ("dropbearkey", "usr/bin/dropbearkey"),
    ("scp", "usr/bin/scp"),
    ("/usr/lib/openssh/sftp-server", "usr/lib/sftp-server"),
)


def _install_dropbear(root: Path) -> None:
    for tool, dest in SSH_TOOLS:
        binary = Path(tool) if tool.startswith("/") else which(tool)
        if not binary.exists():
            raise FileNotFoundError(f"{tool} is missing (Debian package openssh-sftp-server)")
        _copy_file(binary, root / dest, 0o755)
        for lib in _shared_libraries(binary):
            target = root / str(lib).lstrip("/")
            if not target.exists():
                _copy_file(lib, target, 0o755)


def build_rootfs(root: Path, version: str, kernel_version: str) -> None:
    """Fill the empty directory ``root`` with the micro image's root filesystem."""
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "root").mkdir(mode=0o700)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    _install_busybox(root)
    _install_dropbear(root)
    for dest, name, mode in SCRIPTS:
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((FILES / name).read_bytes())
        target.chmod(mode)
    for dest, text in TEXT.items():
        (root / dest).write_text(text)
    (root / "etc/shadow").chmod(0o600)
    (root / "etc/os-release").write_text(
        f'NAME="Kiln micro"\nID=kiln-micro\nVERSION_ID="{version}"\nKERNEL="{kernel_version}"\n'
    )
