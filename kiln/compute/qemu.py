"""``QemuDriver``: one daemonized ``qemu-system-x86_64`` per VM, described by its run directory.

Run directory (see docs/compute.md): ``vm.json`` (the spec's identity: instance id, port,
accelerator, argv), ``qemu.pid`` (written by QEMU), ``qmp.sock``, ``console.log`` (the serial
port; the previous boot's is kept as ``console.log.1``).

QEMU is started with ``-daemonize``: it detaches into its own session once it has set up the
machine, so start-up errors (bad disk, port taken) come back synchronously on stderr, and the VM
survives the exit of the server that started it.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from kiln import errors
from kiln.compute import process
from kiln.compute.driver import ACCELERATORS, DISK_FORMATS, VmHandle, VmSpec
from kiln.compute.qmp import QMP_SOCKET, Qmp, QmpError
from kiln.errors import KilnError
from kiln.types import mac_address

log = logging.getLogger(__name__)

PIDFILE = "qemu.pid"
CONSOLE = "console.log"
STATE = "vm.json"
START_TIMEOUT = 60.0
POWERDOWN_REPEAT = 3.0  # re-press the power button: a guest still booting may miss the first


def _esc(value: str | Path) -> str:
    """Escape a value for QEMU's comma-separated option syntax."""
    return str(value).replace(",", ",,")


class QemuDriver:
    """:class:`kiln.compute.driver.VmDriver` on local QEMU processes."""

    def __init__(
        self, qemu_binary: str | Path = "qemu-system-x86_64", machine: str = "q35"
    ) -> None:
        self.qemu_binary = str(qemu_binary)
        self.machine = machine

    # --- argv -----------------------------------------------------------------------------
    def command(self, spec: VmSpec, binary: str) -> list[str]:
        """The QEMU command line for ``spec`` (QMP socket relative to ``spec.run_dir``),
        behind ``spec.net.argv_prefix`` when it has one (``ip netns exec NS``: that execs QEMU,
        so the running process's argv — what ``_is_ours`` reads — starts with QEMU itself)."""
        run = spec.run_dir.resolve()
        argv = [
            binary,
            "-name",
            _esc(f"kiln-{spec.instance_id}"),
            "-machine",
            self.machine,
            "-accel",
            spec.accel,
            "-smp",
            str(spec.vcpus),
            "-m",
            str(spec.memory_mib),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-chardev",
            f"file,id=console,path={_esc(run / CONSOLE)}",
            "-serial",
            "chardev:console",
            "-qmp",
            f"unix:{QMP_SOCKET},server=on,wait=off",
            "-pidfile",
            str(run / PIDFILE),
            "-daemonize",
        ]
        if spec.accel == "kvm":
            argv += ["-cpu", "host"]
        drives = [(d.path, d.format, False) for d in spec.disks[:1]]
        if spec.seed is not None:
            drives.append((spec.seed, "raw", True))
        drives += [(d.path, d.format, False) for d in spec.disks[1:]]
        for i, (path, fmt, ro) in enumerate(drives):
            opts = f"file={_esc(Path(path).resolve())},format={fmt},if=none,id=disk{i}"
            opts += ",readonly=on" if ro else ",discard=unmap"
            first = i == 0 and spec.kernel is None  # -kernel's option ROM takes bootindex 0
            dev = f"virtio-blk-pci,drive=disk{i}" + (",bootindex=0" if first else "")
            argv += ["-drive", opts, "-device", dev]
        if spec.net is None:
            argv += [
                "-netdev",
                f"user,id=net0,hostfwd=tcp:127.0.0.1:{spec.ssh_host_port}-:22",
                "-device",
                f"virtio-net-pci,netdev=net0,mac={mac_address(spec.instance_id)}",
            ]
        else:
            argv += spec.net.qemu_args
        argv += ["-device", "virtio-rng-pci"]  # entropy for the guest's first host key
        for value in spec.smbios:
            argv += ["-smbios", value]
        if spec.kernel is not None:  # direct kernel boot (kiln/compute/direct_boot.py)
            argv += ["-kernel", str(Path(spec.kernel).resolve())]
            if spec.initrd is not None:
                argv += ["-initrd", str(Path(spec.initrd).resolve())]
            argv += ["-append", spec.append or ""]
        return [*spec.net.argv_prefix, *argv] if spec.net is not None else argv

    def _check(self, spec: VmSpec) -> None:
        bad = errors.InvalidParameterValue
        if not spec.disks:
            raise KilnError(bad, f"{spec.instance_id}: a VM needs a boot disk")
        if spec.accel not in ACCELERATORS:
            raise KilnError(bad, f"accelerator {spec.accel!r} is not one of {ACCELERATORS}")
        if spec.vcpus < 1 or spec.memory_mib < 64:
            raise KilnError(bad, f"{spec.instance_id}: needs at least 1 vCPU and 64 MiB of memory")
        for d in spec.disks:
            if d.format not in DISK_FORMATS:
                raise KilnError(bad, f"disk format {d.format!r} is not one of {DISK_FORMATS}")
        for path in [d.path for d in spec.disks] + ([spec.seed] if spec.seed else []):
            if not Path(path).is_file():
                raise KilnError(bad, f"{spec.instance_id}: disk {path} does not exist")
        for file in (spec.kernel, spec.initrd):
            if file is not None and not Path(file).is_file():
                raise KilnError(bad, f"{spec.instance_id}: kernel file {file} does not exist")

    # --- VmDriver ---------------------------------------------------------------------------
    def start(self, spec: VmSpec) -> VmHandle:
        self._check(spec)
        if self.find(spec.run_dir) is not None:
            raise KilnError(
                errors.IncorrectInstanceState,
                f"{spec.instance_id}: a VM is already running in {spec.run_dir}",
            )
        binary = shutil.which(self.qemu_binary)
        if binary is None:
            raise KilnError(
                errors.InsufficientInstanceCapacity,
                f"cannot start {spec.instance_id}: {self.qemu_binary} not found "
                "(install the Debian package qemu-system-x86)",
            )
        run = spec.run_dir
        run.mkdir(parents=True, exist_ok=True)
        for name in (PIDFILE, QMP_SOCKET):
            (run / name).unlink(missing_ok=True)
        if (run / CONSOLE).exists():
            (run / CONSOLE).replace(run / f"{CONSOLE}.1")
        argv = self.command(spec, binary)
        state = {
            "instance_id": spec.instance_id,
            "ssh_host_port": spec.ssh_host_port,
            "accel": spec.accel,
            "boot": "direct" if spec.kernel is not None else "firmware",
            "argv": argv,
        }
        tmp = run / f"{STATE}.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(run / STATE)
        try:
            proc = subprocess.run(
                argv,
                cwd=run,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=START_TIMEOUT,
                check=False,
            )
            failure = (proc.stderr or proc.stdout).decode(errors="replace").strip()
            failed = proc.returncode != 0
        except (OSError, subprocess.TimeoutExpired) as e:
            failure, failed = str(e), True
        pid = process.read_pid(run / PIDFILE)
        if failed or pid is None or not self._is_ours(pid, run):
            if pid is not None and self._is_ours(pid, run):
                self._terminate(pid, run)
            (run / STATE).unlink(missing_ok=True)
            lines = failure.splitlines()
            detail = lines[-1] if lines else "QEMU exited without starting the VM"
            log.warning("%s: QEMU failed to start: %s", spec.instance_id, failure)
            raise KilnError(
                errors.InsufficientInstanceCapacity,
                f"cannot start {spec.instance_id}: QEMU failed: {detail}",
            )
        if spec.net is not None:
            where = "network: " + (" ".join(spec.net.argv_prefix) or "attachment")
        else:
            where = f"ssh 127.0.0.1:{spec.ssh_host_port}"
        log.info("%s: started QEMU pid %d (%s, %s)", spec.instance_id, pid, spec.accel, where)
        return VmHandle(spec.instance_id, pid, run, spec.ssh_host_port, spec.accel)

    def shutdown(self, handle: VmHandle, timeout: float) -> bool:
        if not self.is_running(handle):
            return True
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                with Qmp(handle.run_dir, timeout=min(5.0, left)) as qmp:
                    qmp.execute("system_powerdown")
            except QmpError as e:
                log.debug("%s: powerdown: %s", handle.instance_id, e)
            step = min(POWERDOWN_REPEAT, max(0.0, deadline - time.monotonic()))
            if process.wait_gone(handle.pid, step, self._owner(handle.run_dir)):
                log.info("%s: guest powered off (QEMU pid %d)", handle.instance_id, handle.pid)
                return True
        log.warning("%s: still running %.0f s after the power button", handle.instance_id, timeout)
        return not self.is_running(handle)

    def kill(self, handle: VmHandle) -> None:
        if self._is_ours(handle.pid, handle.run_dir):
            self._terminate(handle.pid, handle.run_dir)
            log.info("%s: killed QEMU pid %d", handle.instance_id, handle.pid)

    def is_running(self, handle: VmHandle) -> bool:
        return self._is_ours(handle.pid, handle.run_dir)

    def console_output(self, handle: VmHandle) -> bytes:
        try:
            return (handle.run_dir / CONSOLE).read_bytes()
        except FileNotFoundError:
            return b""

    def find(self, run_dir: Path) -> VmHandle | None:
        pid = process.read_pid(run_dir / PIDFILE)
        if pid is None or not self._is_ours(pid, run_dir):
            return None
        try:
            state = json.loads((run_dir / STATE).read_text())
            return VmHandle(
                str(state["instance_id"]),
                pid,
                run_dir,
                int(state["ssh_host_port"]),
                str(state["accel"]),
            )
        except (OSError, ValueError, KeyError) as e:
            log.warning("QEMU pid %d runs from %s but %s is unreadable: %s", pid, run_dir, STATE, e)
            return None

    # --- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _is_ours(pid: int, run_dir: Path) -> bool:
        """Is ``pid`` a live QEMU started with this run directory's pid file?"""
        argv = process.cmdline(pid)
        if not argv or not Path(argv[0]).name.startswith("qemu-system"):
            return False
        pidfile = str(run_dir.resolve() / PIDFILE)
        return any(a == "-pidfile" and b == pidfile for a, b in zip(argv, argv[1:], strict=False))

    def _owner(self, run_dir: Path) -> Callable[[int], bool]:
        return lambda pid: self._is_ours(pid, run_dir)

    def _terminate(self, pid: int, run_dir: Path) -> None:
        """SIGTERM (QEMU closes its images cleanly), then SIGKILL after 5 s."""
        process.send_signal(pid, signal.SIGTERM)
        if not process.wait_gone(pid, 5.0, self._owner(run_dir)):
            process.send_signal(pid, signal.SIGKILL)
            process.wait_gone(pid, 10.0, self._owner(run_dir))
