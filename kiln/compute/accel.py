"""Choosing the accelerator: KVM only if a guest really boots under it, else TCG.

On some hosts /dev/kvm exists and opens but guests hang (here: right after the firmware with
QEMU's default CPU model, and QEMU aborts on an MSR with ``-cpu host``). So ``auto`` boots a
probe guest under KVM exactly as the driver would run it (q35, ``-cpu host``) — the installed
Debian kernel with a busybox initramfs whose /init prints a marker and powers off — and picks
KVM only if the marker arrives in time. A working guest prints continuously (``earlyprintk``,
no ``quiet``), so ``silent_timeout`` seconds without output end the probe early. The verdict is
cached per process and in a file keyed by the QEMU binary, the host kernel and the probe kernel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

MARKER = b"KILN-ACCEL-PROBE-OK"
PROBE_INIT = b"#!/bin/busybox sh\n/bin/busybox echo KILN-ACCEL-PROBE-OK\n/bin/busybox poweroff -f\n"
_memo: dict[str, str] = {}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kiln"


def _kvm_usable(device: Path) -> str | None:
    """None if ``device`` opens read-write, else why not."""
    try:
        os.close(os.open(device, os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        return f"{device}: {e.strerror}"
    return None


def _probe_kernel() -> Path | None:
    images = sorted(Path("/boot").glob("vmlinuz-*"))
    return images[-1] if images else None


def _cache_key(qemu: str, kernel: Path) -> str:
    parts = []
    for p in (Path(qemu).resolve(), kernel):
        st = p.stat()
        parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
    parts.append(os.uname().release)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _probe_initramfs(dest: Path, busybox: str) -> None:
    """An uncompressed newc cpio holding /init and /bin/busybox, made by busybox's cpio."""
    root = dest.parent / "probe-root"
    (root / "bin").mkdir(parents=True)
    shutil.copyfile(busybox, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    (root / "init").write_bytes(PROBE_INIT)
    (root / "init").chmod(0o755)
    with dest.open("wb") as out:
        subprocess.run(
            [busybox, "cpio", "-o", "-H", "newc"],
            input=b"init\nbin\nbin/busybox\n",
            stdout=out,
            stderr=subprocess.DEVNULL,
            cwd=root,
            check=True,
        )


def boot_probe(
    qemu: str, kernel: Path, busybox: str, timeout: float, silent_timeout: float, accel: str = "kvm"
) -> tuple[bool, str]:
    """Boot the probe guest under ``accel``; (marker seen, what happened)."""
    with tempfile.TemporaryDirectory(prefix="kiln-accel-") as d:
        initrd = Path(d) / "probe.cpio"
        _probe_initramfs(initrd, busybox)
        cpu = ["-cpu", "host"] if accel == "kvm" else []
        argv = [
            qemu,
            "-accel",
            accel,
            *cpu,
            "-machine",
            "q35",
            "-m",
            "128",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            str(kernel),
            "-initrd",
            str(initrd),
            "-append",
            "console=ttyS0 earlyprintk=serial panic=-1 cryptomgr.notests 8250.nr_uarts=1",
        ]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        seen = b""
        last_output = started
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                while MARKER not in seen:
                    now = time.monotonic()
                    limit = min(last_output + silent_timeout, started + timeout)
                    if now >= limit:
                        what = "silent" if now < started + timeout else "no marker"
                        return False, f"{what} at {now - started:.1f} s"
                    if not sel.select(limit - now):
                        continue
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        err = proc.stderr.read() if proc.stderr else b""
                        last = err.decode(errors="replace").strip().splitlines() or ["no error"]
                        return False, f"QEMU exited ({last[-1]})"
                    seen = seen[-4096:] + chunk
                    last_output = time.monotonic()
            return True, f"marker after {time.monotonic() - started:.1f} s"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def probe_accelerator(
    requested: str = "auto",
    timeout: float = 20.0,
    *,
    silent_timeout: float = 3.0,
    qemu_binary: str = "qemu-system-x86_64",
    cache_dir: Path | None = None,
    kvm_device: Path = Path("/dev/kvm"),
) -> str:
    """``"kvm"`` or ``"tcg"`` for ``requested`` in ``auto`` / ``kvm`` / ``tcg``.

    ``tcg`` is returned as is; ``kvm`` is trusted if ``kvm_device`` opens (else
    ``KilnError(InvalidParameterValue)``); ``auto`` probes as described above, at most
    ``timeout`` seconds (less if the guest prints nothing for ``silent_timeout``), remembers the
    answer in this process and in ``cache_dir`` (default ``~/.cache/kiln``).
    """
    if requested == "tcg":
        return "tcg"
    if requested not in ("auto", "kvm"):
        raise KilnError(
            errors.InvalidParameterValue, f"accelerator {requested!r} is not one of auto, kvm, tcg"
        )
    why_not = _kvm_usable(kvm_device)
    if requested == "kvm":
        if why_not:
            raise KilnError(errors.InvalidParameterValue, f"accelerator kvm: {why_not}")
        return "kvm"
    if why_not:
        log.info("accelerator: tcg (%s)", why_not)
        return "tcg"
    qemu = shutil.which(qemu_binary)
    kernel = _probe_kernel()
    busybox = shutil.which("busybox")
    if qemu is None or kernel is None or busybox is None:
        log.warning(
            "accelerator: tcg (cannot probe KVM: need %s, a kernel in /boot, busybox)", qemu_binary
        )
        return "tcg"
    cache = (cache_dir or default_cache_dir()) / f"accel-{_cache_key(qemu, kernel)}.json"
    key = str(cache)
    if key in _memo:
        return _memo[key]
    try:
        accel = str(json.loads(cache.read_text())["accel"])
        if accel in ("kvm", "tcg"):
            _memo[key] = accel
            return accel
    except (OSError, ValueError, KeyError):
        pass
    ok, what = boot_probe(qemu, kernel, busybox, timeout, silent_timeout)
    accel = "kvm" if ok else "tcg"
    log.info("accelerator: %s (KVM probe guest: %s)", accel, what)
    _memo[key] = accel
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"accel": accel, "probe": what, "at": int(time.time())}))
        tmp.replace(cache)
    except OSError as e:
        log.warning("accelerator: cannot cache the probe result in %s: %s", cache, e)
    return accel
