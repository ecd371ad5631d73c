"""Run qemu-img (and qemu-io) as subprocesses: list args, LC_ALL=C, a timeout, errors as KilnError.

Every call into QEMU's tools goes through :func:`run`, so each one is logged at DEBUG, has a
timeout and turns a failure into one readable line taken from the tool's own stderr.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from kiln import errors
from kiln.errors import ErrorCode, KilnError

log = logging.getLogger(__name__)

QEMU_IMG = "qemu-img"
QEMU_IO = "qemu-io"

INFO_TIMEOUT = 60.0
CHECK_TIMEOUT = 600.0
MAP_TIMEOUT = 600.0
CREATE_TIMEOUT = 60.0
CONVERT_TIMEOUT = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Completed:
    """The outcome of one tool run that was allowed to finish (see ``ok_codes``)."""

    returncode: int
    stdout: str
    stderr: str


def tool_env() -> dict[str, str]:
    """The environment for QEMU tools: the caller's, with messages in the C locale."""
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KilnError(
            errors.InternalError,
            f"{name} not found: install Debian's qemu-utils (scripts/install does)",
        )
    return path


def last_error_line(stderr: str) -> str:
    """The most useful single line of a QEMU tool's stderr, without the ``qemu-img:`` prefix."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "no error message"
    line = lines[-1]
    for prefix in ("qemu-img: ", "qemu-io: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line


def run(
    tool: str,
    args: Sequence[str],
    *,
    timeout: float,
    code: ErrorCode,
    what: str,
    ok_codes: Sequence[int] = (0,),
) -> Completed:
    """Run ``tool args``; raise ``KilnError(code, "WHAT: <stderr line>")`` unless it exits in ``ok_codes``.

    A missing tool or a timeout also raise ``KilnError`` (InternalError / ``code``).
    """
    argv = [find_tool(tool), *args]
    log.debug("run %s", argv)
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            env=tool_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KilnError(code, f"{what}: {tool} timed out after {timeout:.0f} s") from exc
    log.debug("%s exited %d; stderr=%r", tool, proc.returncode, proc.stderr[-2000:])
    if proc.returncode not in ok_codes:
        raise KilnError(_code_for(proc.stderr, code), f"{what}: {last_error_line(proc.stderr)}")
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def run_json(
    tool: str,
    args: Sequence[str],
    *,
    timeout: float,
    code: ErrorCode,
    what: str,
    ok_codes: Sequence[int] = (0,),
) -> object:
    """Like :func:`run` for a command with ``--output=json``; returns the parsed document."""
    done = run(tool, args, timeout=timeout, code=code, what=what, ok_codes=ok_codes)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise KilnError(code, f"{what}: {tool} printed no valid JSON") from exc


def _code_for(stderr: str, default: ErrorCode) -> ErrorCode:
    if "No space left on device" in stderr:
        return errors.StoreFull
    return default
