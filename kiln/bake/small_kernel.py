"""The micro image's own kernel: Debian's linux-source-6.1 built with everything micro needs
built in (kiln/bake/files/micro-kernel.config over ``make tinyconfig``): no modules, no
initramfs, a third of Debian's kernel to load and far fewer initcalls. Under TCG it reaches
``KILN-READY`` in about two thirds of the time Debian's kernel + initramfs take
(docs/bake.md#the-kernel, bench/vm.py).

Built once per host (minutes; ``kiln bake kernel``, run by scripts/install) into a cache keyed
by the source package's version and the configuration's hash; ``kiln bake micro`` uses the
cached kernel when there is one and Debian's kernel + initramfs otherwise. What is cached:
``<cache>/micro-kernel/<key>/`` with ``bzImage``, ``config`` and ``release``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiln import errors
from kiln.bake.rootfs import FILES
from kiln.errors import KilnError

log = logging.getLogger(__name__)

CONFIG = FILES / "micro-kernel.config"
SOURCE_DIR = Path("/usr/src")
SOURCE_GLOB = "linux-source-*.tar.xz"
#: Environment: where the built kernel is cached (default /var/cache/kiln as root, else
#: ~/.cache/kiln); KILN_SMALL_KERNEL=0 makes ``kiln bake micro`` use Debian's kernel.
CACHE_ENV = "KILN_CACHE_DIR"
USE_ENV = "KILN_SMALL_KERNEL"
#: The Debian packages a build needs (scripts/install installs them).
BUILD_PACKAGES = ("linux-source-6.1", "bc", "flex", "bison", "libelf-dev", "make", "gcc")


@dataclass(frozen=True, slots=True)
class SmallKernel:
    bzimage: Path
    release: str  # ``make kernelrelease``, e.g. 6.1.192


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.geteuid() == 0:
        return Path("/var/cache/kiln")
    return Path.home() / ".cache" / "kiln"


def source_tarball(source_dir: Path = SOURCE_DIR) -> Path | None:
    """The newest linux-source tarball Debian installed, if any."""
    found = sorted(source_dir.glob(SOURCE_GLOB))
    return found[-1] if found else None


def config_lines(text: str | None = None) -> list[str]:
    """The fragment's settings: ``CONFIG_X=v`` and ``# CONFIG_X is not set`` lines."""
    text = CONFIG.read_text() if text is None else text
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") or (line.startswith("# CONFIG_") and "is not set" in line):
            out.append(line)
    return out


def cache_key(tarball: Path) -> str:
    """The source package (its tarball's name and size) and the configuration, hashed."""
    h = hashlib.sha256()
    h.update(tarball.name.encode())
    h.update(str(tarball.stat().st_size).encode())
    h.update("\n".join(config_lines()).encode())
    return h.hexdigest()[:16]


def cached(source_dir: Path = SOURCE_DIR) -> SmallKernel | None:
    """The built kernel for the installed source and today's configuration, if any."""
    tarball = source_tarball(source_dir)
    if tarball is None:
        return None
    d = cache_root() / "micro-kernel" / cache_key(tarball)
    if (d / "bzImage").is_file() and (d / "release").is_file():
        return SmallKernel(d / "bzImage", (d / "release").read_text().strip())
    return None


def wanted() -> bool:
    return os.environ.get(USE_ENV, "1") != "0"


def missing_settings(final_config: str) -> list[str]:
    """Fragment lines the final .config does not hold (a symbol whose dependencies are off)."""
    have = set(config_lines(final_config))
    # an unset symbol may be absent from .config altogether (its menu is off): that is unset too
    present = {line.split("=")[0] for line in have if "=" in line}
    out = []
    for line in config_lines():
        if line in have:
            continue
        if line.startswith("# ") and line.split()[1] not in present:
            continue
        out.append(line)
    return out


def _run(argv: list[str], cwd: Path, log_file: Path) -> None:
    with log_file.open("ab") as out:
        done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        raise KilnError(
            errors.InternalError,
            f"bake kernel: {' '.join(argv)} failed (exit {done.returncode}); "
            f"last lines of {log_file}:\n" + "\n".join(tail),
        )


def build(
    jobs: int | None = None,
    source_dir: Path = SOURCE_DIR,
    progress: Callable[[str], None] = lambda _step: None,
) -> SmallKernel:
    """Build the kernel into the cache (nothing to do if it is there). :raises KilnError: no
    source package, a tool missing, a setting the source cannot take, or the build failing."""
    tarball = source_tarball(source_dir)
    if tarball is None:
        raise KilnError(
            errors.InternalError,
            f"bake kernel: no {SOURCE_GLOB} in {source_dir}; install the Debian package "
            "linux-source-6.1 (scripts/install does)",
        )
    done = cached(source_dir)
    if done is not None:
        return done
    for tool in ("make", "gcc", "bc", "flex", "bison"):
        if shutil.which(tool) is None:
            raise KilnError(
                errors.InternalError,
                f"bake kernel: {tool} not found; install {' '.join(BUILD_PACKAGES)}",
            )
    dest = cache_root() / "micro-kernel" / cache_key(tarball)
    dest.parent.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".build-") as d:
        work = Path(d)
        build_log = work / "build.log"
        progress("unpacking the kernel source")
        with tarfile.open(tarball) as tar:
            tar.extractall(work, filter="tar")
        (tree,) = [p for p in work.iterdir() if p.is_dir()]
        make = ["make", "ARCH=x86_64", f"-j{jobs}"]
        progress("configuring (tinyconfig + kiln/bake/files/micro-kernel.config)")
        _run([*make, "tinyconfig"], tree, build_log)
        _run(
            ["scripts/kconfig/merge_config.sh", "-m", ".config", str(CONFIG)],
            tree,
            build_log,
        )
        _run([*make, "olddefconfig"], tree, build_log)
        final = (tree / ".config").read_text()
        bad = missing_settings(final)
        if bad:
            raise KilnError(
                errors.InternalError,
                "bake kernel: the source does not take these settings (a dependency is off): "
                + ", ".join(bad),
            )
        progress(f"compiling (make -j{jobs}; minutes)")
        _run([*make, "bzImage"], tree, build_log)
        release = subprocess.run(
            ["make", "-s", "ARCH=x86_64", "kernelrelease"],
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        staged = work / "out"
        staged.mkdir()
        shutil.copy2(tree / "arch" / "x86" / "boot" / "bzImage", staged / "bzImage")
        (staged / "config").write_text(final)
        (staged / "release").write_text(release + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        staged.rename(dest)
    log.info("built the micro kernel %s into %s", release, dest)
    return SmallKernel(dest / "bzImage", release)
