"""The micro image: what the disk holds, and that QEMU boots the disk itself to readiness."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import zstandard

from kiln import errors
from kiln.bake import small_kernel
from kiln.bake.disk import MBR_BIN_CANDIDATES, DiskLayout
from kiln.bake.kernel import BOOT_MODULES, find_kernel, resolve_modules
from kiln.bake.micro import BakeResult, build_initramfs, build_micro_image
from kiln.compute.driver import DiskSpec, VmSpec
from kiln.compute.ports import pick_free_port
from kiln.compute.qemu import QemuDriver
from kiln.compute.seed import make_nocloud_seed
from kiln.errors import KilnError

LAYOUT = DiskLayout()


@pytest.fixture(scope="session")
def micro(tmp_path_factory: pytest.TempPathFactory) -> BakeResult:
    """The micro image on Debian's kernel + initramfs (the path without a built micro kernel)."""
    d = tmp_path_factory.mktemp("bake")
    return build_micro_image(d / "micro.raw", d / "work", small=False)


@pytest.fixture(scope="session")
def micro_small(tmp_path_factory: pytest.TempPathFactory) -> BakeResult:
    """The micro image on its own kernel, which the test command builds (scripts/install)."""
    if not small_kernel.wanted():
        pytest.skip("KILN_SMALL_KERNEL=0: the micro kernel is not built on this host")
    d = tmp_path_factory.mktemp("bake-small")
    return build_micro_image(d / "micro.raw", d / "work", small=True)


def _cpio_members(data: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    pos = 0
    while True:
        head = data[pos : pos + 110]
        assert head[:6] == b"070701"
        size, namesize = int(head[54:62], 16), int(head[94:102], 16)
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return members
        members[name] = data[pos : pos + size]
        pos += size
        pos += -pos % 4


def test_build_micro_image_result_and_partition_table(micro: BakeResult) -> None:
    assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", micro.version)
    assert micro.kernel_version == find_kernel().version
    assert micro.size_bytes == 64 * 1024 * 1024 == micro.path.stat().st_size
    # mostly sparse: only the files written take space
    assert micro.path.stat().st_blocks * 512 < micro.size_bytes // 2

    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(micro.path)], check=True, capture_output=True
        ).stdout
    )["partitiontable"]
    assert table["label"] == "dos"
    boot, root = table["partitions"]
    assert boot["bootable"] is True and boot["type"] == "e"
    assert boot["start"] * 512 == LAYOUT.boot_offset
    assert root["type"] == "83" and root["start"] * 512 == LAYOUT.root_offset
    mbr = next(p for p in MBR_BIN_CANDIDATES if p.exists()).read_bytes()[:440]
    assert micro.path.read_bytes()[:440] == mbr


def test_boot_partition_holds_syslinux_kernel_and_initramfs(micro: BakeResult) -> None:
    image = f"{micro.path}@@{LAYOUT.boot_offset}"
    listing = subprocess.run(
        ["mdir", "-a", "-b", "-i", image, "::/"], check=True, capture_output=True, text=True
    ).stdout.upper()
    for name in ("LDLINUX.SYS", "LDLINUX.C32", "SYSLINUX.CFG", "VMLINUZ", "INITRD.IMG"):
        assert name in listing
    cfg = subprocess.run(
        ["mtype", "-i", image, "::/syslinux.cfg"], check=True, capture_output=True, text=True
    ).stdout
    assert "LINUX /vmlinuz" in cfg and "INITRD /initrd.img" in cfg
    assert "root=LABEL=kiln-root" in cfg and "console=ttyS0" in cfg
    kernel = subprocess.run(
        ["mtype", "-i", image, "::/vmlinuz"], check=True, capture_output=True
    ).stdout
    assert kernel == find_kernel().image.read_bytes()


def test_root_filesystem_is_clean_and_holds_no_instance_secrets(micro: BakeResult) -> None:
    fs = f"{micro.path}?offset={LAYOUT.root_offset}"
    fsck = subprocess.run(["e2fsck", "-fn", fs], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    def debugfs(cmd: str) -> str:
        return subprocess.run(
            ["debugfs", "-R", cmd, fs], check=True, capture_output=True, text=True
        ).stdout

    assert (
        "kiln-root" in subprocess.run(["dumpe2fs", "-h", fs], capture_output=True, text=True).stdout
    )
    assert "dropbear_" not in debugfs("ls -l /etc/dropbear")  # no host key baked in
    assert "authorized_keys" not in debugfs("ls -l /root")
    assert "/bin/busybox" in debugfs("stat /sbin/init")  # fast symlink target
    assert "Type: regular" in debugfs("stat /usr/sbin/dropbear")
    assert "KILN-READY" in debugfs("cat /usr/lib/kiln/instance-boot")
    assert micro.version in debugfs("cat /etc/os-release")


def test_initramfs_loads_modules_after_their_dependencies() -> None:
    kernel = find_kernel()
    members = _cpio_members(
        zstandard.ZstdDecompressor().decompressobj().decompress(build_initramfs(kernel))
    )
    assert {"init", "bin/busybox", "dev/console"} <= members.keys()
    order = members["lib/modules/load-order"].decode().split()
    for want in BOOT_MODULES:
        assert want in order
    # every module after what modules.dep says it needs
    deps = {m.name: m for m in resolve_modules(kernel)}
    dep_lines = (kernel.modules_dir / "modules.dep").read_text().splitlines()
    for line in dep_lines:
        target, _, rest = line.partition(":")
        name = Path(target).name.removesuffix(".ko").replace("-", "_")
        if name in deps:
            for d in rest.split():
                dep = Path(d).name.removesuffix(".ko").replace("-", "_")
                assert order.index(dep) < order.index(name), (dep, name)
    # ext4 and jbd2 need crc32c through the crypto API, which modules.dep does not list
    assert order.index("crc32c_generic") < order.index("jbd2") < order.index("ext4")
    for name in order:
        assert members[f"lib/modules/{name}.ko"][:4] == b"\x7fELF"


def test_build_fails_clearly_without_the_kernel_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "micro.raw"
    with pytest.raises(KilnError) as e:
        build_micro_image(out, tmp_path / "work", kernel_version="0.0.0-not-installed")
    assert e.value.code == errors.InternalError
    assert "linux-image-amd64" in e.value.message
    assert not out.exists() and not (tmp_path / "micro.raw.part").exists()


def test_the_micro_kernel_image_boots_without_an_initramfs(micro_small: BakeResult) -> None:
    built = small_kernel.cached()
    assert built is not None and micro_small.kernel_version == built.release
    image = f"{micro_small.path}@@{LAYOUT.boot_offset}"
    listing = subprocess.run(
        ["mdir", "-a", "-b", "-i", image, "::/"], check=True, capture_output=True, text=True
    ).stdout.upper()
    assert "VMLINUZ" in listing and "SYSLINUX.CFG" in listing and "INITRD.IMG" not in listing
    cfg = subprocess.run(
        ["mtype", "-i", image, "::/syslinux.cfg"], check=True, capture_output=True, text=True
    ).stdout
    assert "INITRD" not in cfg and "root=/dev/vda2 rw" in cfg
    kernel = subprocess.run(
        ["mtype", "-i", image, "::/vmlinuz"], check=True, capture_output=True
    ).stdout
    assert kernel == built.bzimage.read_bytes()
    config = (built.bzimage.parent / "config").read_text()
    assert small_kernel.missing_settings(config) == []
    assert "CONFIG_MODULES=y" not in config and "CONFIG_VIRTIO_BLK=y" in config


def test_a_setting_the_source_cannot_take_is_named() -> None:
    final = "CONFIG_64BIT=y\n# CONFIG_IPV6 is not set\n"
    missing = small_kernel.missing_settings(final)
    assert "CONFIG_VIRTIO_BLK=y" in missing and "CONFIG_64BIT=y" not in missing
    assert "# CONFIG_IPV6 is not set" not in missing


@pytest.mark.slow
@pytest.mark.parametrize("which", ["debian-kernel", "micro-kernel"])
def test_micro_image_boots_from_its_disk_to_ready(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    micro: BakeResult = request.getfixturevalue(
        "micro" if which == "debian-kernel" else "micro_small"
    )
    overlay = tmp_path / "root.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            str(micro.path),
            "-F",
            "raw",
            str(overlay),
        ],
        check=True,
    )
    iid = "i-0b0a0b0a0b0a0b0a0"
    seed = make_nocloud_seed(tmp_path / "seed.iso", iid, "bake-test", [], None)
    driver = QemuDriver()
    vm = driver.start(
        VmSpec(
            iid,
            tmp_path / "run",
            [DiskSpec(overlay, "qcow2")],
            seed,
            vcpus=1,
            memory_mib=256,
            ssh_host_port=pick_free_port(),
            accel="tcg",
        )
    )
    try:
        deadline = time.monotonic() + 300
        ready = f"KILN-READY instance-id={iid}".encode()
        while ready not in driver.console_output(vm):
            assert driver.is_running(vm), driver.console_output(vm).decode(errors="replace")
            assert time.monotonic() < deadline, "no readiness line"
            time.sleep(0.2)
        console = driver.console_output(vm).decode()
        assert "BEGIN SSH HOST KEY KEYS" in console and "root@bake-test" in console
        assert driver.shutdown(vm, timeout=120)
        assert not driver.is_running(vm)
        assert "reboot: Power down" in driver.console_output(vm).decode()
    finally:
        driver.kill(vm)
