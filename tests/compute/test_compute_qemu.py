"""QemuDriver with real QEMU (TCG) guests booted from the micro image."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from kiln import errors
from kiln.bake.micro import BakeResult, build_micro_image
from kiln.compute.driver import DiskSpec, VmHandle, VmSpec
from kiln.compute.ports import pick_free_port
from kiln.compute.qemu import QemuDriver
from kiln.compute.seed import make_nocloud_seed
from kiln.errors import KilnError

USER_DATA = b"#!/bin/sh\necho hello > /root/hello.txt\ndate >> /root/user-data-runs.txt\n"
READY_WAIT = 300.0  # a guard against hanging forever, not a speed requirement


@pytest.fixture(scope="session")
def micro(tmp_path_factory: pytest.TempPathFactory) -> BakeResult:
    d = tmp_path_factory.mktemp("micro")
    return build_micro_image(d / "micro.raw", d / "work")


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@kiln", "-f", str(key)],
        check=True,
    )
    return key


def _overlay(base: Path, path: Path) -> Path:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(path)],
        check=True,
    )
    return path


def _spec(tmp: Path, name: str, overlay: Path, seed: Path | None) -> VmSpec:
    return VmSpec(
        name,
        tmp / f"run-{name}",
        [DiskSpec(overlay, "qcow2")],
        seed,
        vcpus=1,
        memory_mib=256,
        ssh_host_port=pick_free_port(),
        accel="tcg",
    )


def _wait_ready(driver: QemuDriver, vm: VmHandle) -> str:
    ready = f"KILN-READY instance-id={vm.instance_id}\n".encode()
    deadline = time.monotonic() + READY_WAIT
    while ready not in driver.console_output(vm).replace(b"\r\n", b"\n"):
        out = driver.console_output(vm).decode(errors="replace")
        assert driver.is_running(vm), f"VM exited before ready:\n{out}"
        assert time.monotonic() < deadline, f"no readiness line:\n{out}"
        time.sleep(0.2)
    return driver.console_output(vm).decode(errors="replace")


def _ssh(vm: VmHandle, key: Path, command: str) -> tuple[str, str]:
    """(stdout of ``command`` run as root over SSH, the server's host key)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=vm.ssh_host_port,
        username="root",
        pkey=paramiko.Ed25519Key.from_private_key_file(str(key)),
        look_for_keys=False,
        allow_agent=False,
        timeout=60,
        banner_timeout=60,
    )
    try:
        transport = client.get_transport()
        assert transport is not None
        host_key = transport.get_remote_server_key().get_base64()
        _, stdout, _ = client.exec_command(command, timeout=60)
        return stdout.read().decode(), host_key
    finally:
        client.close()


def _processes_using(run_dir: Path) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if str(run_dir).encode() in (p / "cmdline").read_bytes():
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


@pytest.mark.slow
def test_instance_boots_runs_user_data_serves_ssh_and_keeps_its_disk(
    micro: BakeResult, ssh_key: Path, tmp_path: Path
) -> None:
    driver = QemuDriver()
    base_digest = hashlib.sha256(micro.path.read_bytes()).hexdigest()
    overlay = _overlay(micro.path, tmp_path / "root.qcow2")
    iid = "i-0123456789abcdef0"
    seed = make_nocloud_seed(
        tmp_path / "seed.iso", iid, "web-1", [ssh_key.with_suffix(".pub").read_text()], USER_DATA
    )
    spec = _spec(tmp_path, iid, overlay, seed)

    vm = driver.start(spec)
    try:
        console = _wait_ready(driver, vm)
        assert "kiln: user-data exit=0" in console
        out, host_key = _ssh(
            vm, ssh_key, "cat /root/hello.txt; hostname; wc -l < /root/.ssh/authorized_keys"
        )
        assert out.split() == ["hello", "web-1", "1"]
        assert host_key in console  # the console shows the key SSH presents
        assert driver.shutdown(vm, timeout=120)
        assert not driver.is_running(vm) and _processes_using(spec.run_dir) == []
        assert driver.find(spec.run_dir) is None

        # Second boot from the same overlay: the file is still there, user-data did not run
        # again, the key was replaced rather than appended, the host key is the same.
        vm = driver.start(spec)
        console = _wait_ready(driver, vm)
        assert "running user-data" not in console
        out, host_key_again = _ssh(
            vm,
            ssh_key,
            "cat /root/hello.txt; "
            "wc -l < /root/user-data-runs.txt; "
            "wc -l < /root/.ssh/authorized_keys",
        )
        assert out.split() == ["hello", "1", "1"]
        assert host_key_again == host_key
        # `poweroff` from inside the guest stops the VM too
        _ssh(vm, ssh_key, "poweroff")
        deadline = time.monotonic() + 120
        while driver.is_running(vm):
            assert time.monotonic() < deadline, "guest poweroff did not stop QEMU"
            time.sleep(0.2)
    finally:
        driver.kill(vm)
    # the writes landed in the overlay, which is consistent; the base image is untouched
    assert subprocess.run(["qemu-img", "check", str(overlay)], capture_output=True).returncode == 0
    assert hashlib.sha256(micro.path.read_bytes()).hexdigest() == base_digest


@pytest.mark.slow
def test_vm_outlives_its_starter_and_instances_get_their_own_host_keys(
    micro: BakeResult, ssh_key: Path, tmp_path: Path
) -> None:
    """Instance B is started by another process that then exits (a `kiln serve` restart);
    `find` re-attaches to it. A and B, launched from the same base, have different host keys."""
    driver = QemuDriver()
    pub = [ssh_key.with_suffix(".pub").read_text()]
    a = _spec(
        tmp_path,
        "i-0aaaaaaaaaaaaaaaa",
        _overlay(micro.path, tmp_path / "a.qcow2"),
        make_nocloud_seed(tmp_path / "a.seed", "i-0aaaaaaaaaaaaaaaa", "a", pub, None),
    )
    b = _spec(
        tmp_path,
        "i-0bbbbbbbbbbbbbbbb",
        _overlay(micro.path, tmp_path / "b.qcow2"),
        make_nocloud_seed(tmp_path / "b.seed", "i-0bbbbbbbbbbbbbbbb", "b", pub, None, fmt="vfat"),
    )
    starter = (
        "import sys; from pathlib import Path\n"
        "from kiln.compute.driver import VmSpec, DiskSpec\n"
        "from kiln.compute.qemu import QemuDriver\n"
        f"QemuDriver().start(VmSpec({b.instance_id!r}, Path({str(b.run_dir)!r}), "
        f"[DiskSpec(Path({str(b.disks[0].path)!r}), 'qcow2')], Path({str(b.seed)!r}), 1, 256, "
        f"{b.ssh_host_port}, 'tcg'))\n"
    )
    subprocess.run([sys.executable, "-c", starter], check=True, timeout=120)
    vm_a = driver.start(a)
    vm_b = driver.find(b.run_dir)
    try:
        assert vm_b is not None
        assert (vm_b.instance_id, vm_b.ssh_host_port, vm_b.accel) == (
            b.instance_id,
            b.ssh_host_port,
            "tcg",
        )
        assert os.getsid(vm_b.pid) != os.getsid(0)  # its own session, not ours
        _wait_ready(driver, vm_a)
        _wait_ready(driver, vm_b)
        out_a, key_a = _ssh(vm_a, ssh_key, "hostname")
        out_b, key_b = _ssh(vm_b, ssh_key, "hostname")
        assert (out_a.strip(), out_b.strip()) == ("a", "b")
        assert key_a != key_b
        with pytest.raises(KilnError) as e:  # one VM per run directory
            driver.start(b)
        assert e.value.code == errors.IncorrectInstanceState
    finally:
        driver.kill(vm_a)
        if vm_b is not None:
            driver.kill(vm_b)
    assert driver.find(a.run_dir) is None and driver.find(b.run_dir) is None
    assert _processes_using(a.run_dir) == [] and _processes_using(b.run_dir) == []
    driver.kill(vm_b)  # idempotent
    assert driver.shutdown(vm_b, timeout=1)  # already off


def test_missing_qemu_is_a_clear_error_and_leaves_nothing(
    micro: BakeResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = _overlay(micro.path, tmp_path / "root.qcow2")
    for driver in (QemuDriver(qemu_binary=tmp_path / "no-such-qemu"), QemuDriver()):
        if driver.qemu_binary == "qemu-system-x86_64":
            monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without QEMU
        spec = _spec(tmp_path, "i-0cccccccccccccccc", overlay, None)
        with pytest.raises(KilnError) as e:
            driver.start(spec)
        assert e.value.code == errors.InsufficientInstanceCapacity
        assert "not found" in e.value.message
        assert _processes_using(spec.run_dir) == [] and driver.find(spec.run_dir) is None


def test_qemu_failing_to_start_is_a_clear_error_and_leaves_nothing(
    micro: BakeResult, tmp_path: Path
) -> None:
    overlay = _overlay(micro.path, tmp_path / "root.qcow2")
    spec = _spec(tmp_path, "i-0dddddddddddddddd", overlay, None)
    # the forwarded SSH port is taken: QEMU cannot set up the VM's network
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", spec.ssh_host_port))
        taken.listen()
        with pytest.raises(KilnError) as e:
            QemuDriver().start(spec)
    assert e.value.code == errors.InsufficientInstanceCapacity
    assert "QEMU failed" in e.value.message and "forward" in e.value.message
    assert _processes_using(spec.run_dir) == [] and QemuDriver().find(spec.run_dir) is None
    # a binary that is not QEMU at all
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text("#!/bin/sh\necho 'qemu: cannot initialize' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(KilnError) as e:
        QemuDriver(qemu_binary=fake).start(spec)
    assert "cannot initialize" in e.value.message
    assert _processes_using(spec.run_dir) == []


def test_bad_spec_is_refused_before_anything_starts(tmp_path: Path) -> None:
    driver = QemuDriver()
    missing = VmSpec(
        "i-0eeeeeeeeeeeeeeee",
        tmp_path / "run",
        [DiskSpec(tmp_path / "nope", "raw")],
        None,
        1,
        256,
        pick_free_port(),
        "tcg",
    )
    with pytest.raises(KilnError, match="does not exist"):
        driver.start(missing)
    with pytest.raises(KilnError, match="accelerator"):
        driver.start(VmSpec("i-1", tmp_path / "run", missing.disks, None, 1, 256, 2222, "auto"))
    assert not (tmp_path / "run").exists()


def test_console_output_and_find_for_a_vm_that_never_ran(tmp_path: Path) -> None:
    driver = QemuDriver()
    assert driver.find(tmp_path) is None
    handle = VmHandle("i-0ffffffffffffffff", 1, tmp_path, 2222, "tcg")  # pid 1 is not ours
    assert not driver.is_running(handle)
    assert driver.console_output(handle) == b""
    assert driver.shutdown(handle, timeout=1)
    driver.kill(handle)  # a no-op: never signals a process that is not this VM
