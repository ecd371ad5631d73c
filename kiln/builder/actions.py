"""Image Builder's action modules as shell: each turns its (substituted) inputs into one POSIX
sh script run in the guest over SSH (busybox sh on micro, bash or dash on debian). A script's
exit status is the step's; its stdout is the step's ``outputs.stdout``. docs/builds.md#actions
lists the inputs of each."""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from kiln.builder.yamlnodes import Plain

PERMISSIONS_RE = re.compile(r"^[0-7]{3,4}$")
OWNER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$|^[0-9]+$")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.:=~-]*$")
#: UpdateOS and InstallPackages: the guest's package manager (apt-get on Debian).
NO_PACKAGE_MANAGER = 'echo "no supported package manager (apt-get) in the guest" >&2; exit 127'


@dataclass(frozen=True, slots=True)
class Action:
    """``check(inputs)``: what is wrong with them, or None. ``script(inputs)``: the sh script.
    ``reboots``: the guest reboots after the script and the build waits for it."""

    check: Callable[[Plain], str | None]
    script: Callable[[Plain], str]
    reboots: bool = False


def q(value: object) -> str:
    return shlex.quote(str(value))


def _entries(
    inputs: Plain, required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[list[dict[str, Plain]], str | None]:
    """File actions take a list of mappings (AWS's shape)."""
    if not isinstance(inputs, list) or not inputs:
        return [], "inputs is a non-empty list of mappings"
    out: list[dict[str, Plain]] = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            return [], f"inputs[{i}] must be a mapping"
        for key in item:
            if key not in required and key not in optional:
                known = ", ".join((*required, *optional))
                return [], f"inputs[{i}].{key}: unknown key (known: {known})"
        for key in required:
            if key not in item or item[key] in (None, ""):
                return [], f"inputs[{i}]: missing required key '{key}'"
        for key in ("permissions",):
            if key in item and not PERMISSIONS_RE.match(str(item[key])):
                return [], f"inputs[{i}].permissions: an octal mode such as 0644"
        for key in ("owner", "group"):
            if key in item and not OWNER_RE.match(str(item[key])):
                return [], f"inputs[{i}].{key}: not a user or group name"
        for key in ("overwrite", "force", "recursive"):
            if key in item and not isinstance(item[key], bool):
                return [], f"inputs[{i}].{key}: true or false"
        out.append(item)
    return out, None


def _file_check(
    required: tuple[str, ...], optional: tuple[str, ...]
) -> Callable[[Plain], str | None]:
    def check(inputs: Plain) -> str | None:
        entries, problem = _entries(inputs, required, optional)
        if problem is None and any(
            str(e.get("encoding", "plain")) not in ("plain", "base64") for e in entries
        ):
            return "encoding is plain or base64"
        return problem

    return check


def _entries_of(inputs: Plain) -> list[dict[str, Plain]]:
    assert isinstance(inputs, list)
    return [e for e in inputs if isinstance(e, dict)]


def _content(entry: dict[str, Plain]) -> str:
    """The entry's content written by printf from base64 (any bytes, no quoting games)."""
    raw = str(entry.get("content", "") or "")
    data = raw.encode() if entry.get("encoding", "plain") != "base64" else base64.b64decode(raw)
    return base64.b64encode(data).decode()


def _attrs(entry: dict[str, Plain], path: str) -> list[str]:
    lines = []
    if "owner" in entry or "group" in entry:
        owner = str(entry.get("owner", ""))
        group = str(entry.get("group", ""))
        lines.append(f"chown {q(owner + (':' + group if group else ''))} {path}")
    if "permissions" in entry:
        lines.append(f"chmod {q(entry['permissions'])} {path}")
    return lines


def _script(lines: list[str]) -> str:
    return "set -e\n" + "\n".join(lines) + "\n"


def execute_bash_check(inputs: Plain) -> str | None:
    if not isinstance(inputs, dict) or set(inputs) != {"commands"}:
        return "inputs is {commands: [...]}"
    commands = inputs["commands"]
    if not isinstance(commands, list) or not commands:
        return "commands is a non-empty list of strings"
    return None


def execute_bash(inputs: Plain) -> str:
    """The commands as one script: like AWS, each line runs in turn and the script's exit
    status (the last command's, or an ``exit N``) is the step's."""
    assert isinstance(inputs, dict) and isinstance(inputs["commands"], list)
    return "\n".join(str(c) for c in inputs["commands"]) + "\n"


def create_file(inputs: Plain) -> str:
    lines = []
    for e in _entries_of(inputs):
        path = q(e["path"])
        if e.get("overwrite", True) is False:
            lines.append(f'if [ -e {path} ]; then echo "{e["path"]} exists" >&2; exit 1; fi')
        lines.append(f'mkdir -p "$(dirname {path})"')
        lines.append(f"printf %s {q(_content(e))} | base64 -d > {path}")
        lines += _attrs(e, path)
    return _script(lines)


def append_file(inputs: Plain) -> str:
    return _script(
        [f"printf %s {q(_content(e))} | base64 -d >> {q(e['path'])}" for e in _entries_of(inputs)]
    )


def delete_file(inputs: Plain) -> str:
    return _script([f"rm -f -- {q(e['path'])}" for e in _entries_of(inputs)])


def delete_folder(inputs: Plain) -> str:
    lines = []
    for e in _entries_of(inputs):
        lines.append(f"rm -rf -- {q(e['path'])}" if e.get("force") else f"rmdir -- {q(e['path'])}")
    return _script(lines)


def _copy_or_move(command: str) -> Callable[[Plain], str]:
    def script(inputs: Plain) -> str:
        lines = []
        for e in _entries_of(inputs):
            src, dst = q(e["source"]), q(e["destination"])
            if e.get("overwrite", True) is False:
                lines.append(
                    f'if [ -e {dst} ]; then echo "{e["destination"]} exists" >&2; exit 1; fi'
                )
            lines.append(f'mkdir -p "$(dirname {dst})"')
            lines.append(f"{command} -- {src} {dst}")
        return _script(lines)

    return script


def set_file_owner(inputs: Plain) -> str:
    return _script([line for e in _entries_of(inputs) for line in _attrs(e, q(e["path"]))])


def set_file_permissions(inputs: Plain) -> str:
    return _script([f"chmod {q(e['permissions'])} {q(e['path'])}" for e in _entries_of(inputs)])


def create_folder(inputs: Plain) -> str:
    lines = []
    for e in _entries_of(inputs):
        path = q(e["path"])
        if e.get("overwrite", True) is False:
            lines.append(f'if [ -e {path} ]; then echo "{e["path"]} exists" >&2; exit 1; fi')
        lines.append(f"mkdir -p {path}")
        lines += _attrs(e, path)
    return _script(lines)


def reboot_check(inputs: Plain) -> str | None:
    if inputs is None:
        return None
    if not isinstance(inputs, dict) or not set(inputs) <= {"delaySeconds"}:
        return "inputs is {delaySeconds: N}"
    delay = inputs.get("delaySeconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 3600:
        return "delaySeconds is an integer from 0 to 3600"
    return None


def reboot(inputs: Plain) -> str:
    delay = inputs.get("delaySeconds", 0) if isinstance(inputs, dict) else 0
    return f"sync\n(sleep {int(str(delay)) + 1}; reboot) >/dev/null 2>&1 </dev/null &\n"


def _names(inputs: Plain, key: str) -> list[str]:
    if not isinstance(inputs, dict):
        return []
    value = inputs.get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


def update_os_check(inputs: Plain) -> str | None:
    if inputs is None:
        return None
    if not isinstance(inputs, dict) or not set(inputs) <= {"include", "exclude"}:
        return "inputs is {include: [...], exclude: [...]}"
    for key in ("include", "exclude"):
        value = inputs.get(key, [])
        if not isinstance(value, list) or not all(PACKAGE_RE.match(str(v)) for v in value):
            return f"{key} is a list of package names"
    return None


APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confold"


def update_os(inputs: Plain) -> str:
    """apt-get upgrade (every package, or ``include`` only), holding ``exclude``."""
    include, exclude = _names(inputs, "include"), _names(inputs, "exclude")
    lines = ["if command -v apt-get >/dev/null 2>&1; then", "  apt-get update"]
    if exclude:
        lines.append(f"  apt-mark hold {' '.join(q(p) for p in exclude)}")
    if include:
        lines.append(f"  {APT} install --only-upgrade {' '.join(q(p) for p in include)}")
    else:
        lines.append(f"  {APT} upgrade")
    if exclude:
        lines.append(f"  apt-mark unhold {' '.join(q(p) for p in exclude)}")
    lines += ["else", f"  {NO_PACKAGE_MANAGER}", "fi"]
    return _script(lines)


def packages_check(inputs: Plain) -> str | None:
    if not isinstance(inputs, dict) or set(inputs) != {"packages"}:
        return "inputs is {packages: [...]}"
    names = inputs["packages"]
    if not isinstance(names, list) or not names:
        return "packages is a non-empty list of package names"
    if not all(PACKAGE_RE.match(str(n)) for n in names):
        return "packages are Debian package names (name, or name=version)"
    return None


def _apt(verb: str) -> Callable[[Plain], str]:
    def script(inputs: Plain) -> str:
        names = " ".join(q(n) for n in _names(inputs, "packages"))
        update = "  apt-get update\n" if verb == "install" else ""
        return _script(
            [
                "if command -v apt-get >/dev/null 2>&1; then",
                update + f"  {APT} {verb} {names}",
                "else",
                f"  {NO_PACKAGE_MANAGER}",
                "fi",
            ]
        )

    return script


_FILE = ("path",)
ACTIONS: dict[str, Action] = {
    "ExecuteBash": Action(execute_bash_check, execute_bash),
    "CreateFile": Action(
        _file_check(_FILE, ("content", "encoding", "owner", "group", "permissions", "overwrite")),
        create_file,
    ),
    "AppendFile": Action(_file_check(_FILE, ("content", "encoding")), append_file),
    "DeleteFile": Action(_file_check(_FILE, ()), delete_file),
    "DeleteFolder": Action(_file_check(_FILE, ("force",)), delete_folder),
    "CopyFile": Action(
        _file_check(("source", "destination"), ("overwrite",)), _copy_or_move("cp -p")
    ),
    "MoveFile": Action(_file_check(("source", "destination"), ("overwrite",)), _copy_or_move("mv")),
    "SetFileOwner": Action(_file_check(_FILE, ("owner", "group")), set_file_owner),
    "SetFilePermissions": Action(_file_check(("path", "permissions"), ()), set_file_permissions),
    "CreateFolder": Action(
        _file_check(_FILE, ("owner", "group", "permissions", "overwrite")), create_folder
    ),
    "Reboot": Action(reboot_check, reboot, reboots=True),
    "UpdateOS": Action(update_os_check, update_os),
    "InstallPackages": Action(packages_check, _apt("install")),
    "RemovePackages": Action(packages_check, _apt("purge")),
}
