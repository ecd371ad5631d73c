"""Each action module's script, run for real by the host's /bin/sh in a temporary directory
(the same POSIX sh the guests run: busybox on micro, dash/bash on debian)."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

from kiln.builder.actions import ACTIONS
from kiln.builder.yamlnodes import Plain


def run(action: str, inputs: Plain) -> subprocess.CompletedProcess[str]:
    assert ACTIONS[action].check(inputs) is None
    script = ACTIONS[action].script(inputs)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)


def test_execute_bash_returns_stdout_and_the_last_exit_status(tmp_path: Path) -> None:
    ok = run("ExecuteBash", {"commands": ["echo one", "echo two"]})
    assert (ok.returncode, ok.stdout) == (0, "one\ntwo\n")
    bad = run("ExecuteBash", {"commands": ["echo before", "exit 3"]})
    assert bad.returncode == 3 and bad.stdout == "before\n"


def test_create_append_copy_move_delete_files(tmp_path: Path) -> None:
    f = tmp_path / "deep" / "dir" / "motd"
    content = 'it\'s "quoted" $HOME `x`\n'
    assert (
        run("CreateFile", [{"path": str(f), "content": content, "permissions": "0600"}]).returncode
        == 0
    )
    assert f.read_text() == content and stat.S_IMODE(f.stat().st_mode) == 0o600
    b64 = base64.b64encode(b"\x00\xffbinary").decode()
    assert (
        run("AppendFile", [{"path": str(f), "content": b64, "encoding": "base64"}]).returncode == 0
    )
    assert f.read_bytes() == content.encode() + b"\x00\xffbinary"
    refused = run("CreateFile", [{"path": str(f), "content": "x", "overwrite": False}])
    assert (
        refused.returncode != 0 and "exists" in refused.stderr and f.read_bytes().startswith(b"it")
    )
    copy = tmp_path / "copy" / "motd"
    assert run("CopyFile", [{"source": str(f), "destination": str(copy)}]).returncode == 0
    assert copy.read_bytes() == f.read_bytes()
    moved = tmp_path / "moved"
    assert run("MoveFile", [{"source": str(copy), "destination": str(moved)}]).returncode == 0
    assert moved.exists() and not copy.exists()
    assert run("DeleteFile", [{"path": str(moved)}, {"path": str(f)}]).returncode == 0
    assert not moved.exists() and not f.exists()


def test_folders_permissions_and_owners(tmp_path: Path) -> None:
    d = tmp_path / "a" / "b"
    assert run("CreateFolder", [{"path": str(d), "permissions": "0750"}]).returncode == 0
    assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o750
    assert run("SetFilePermissions", [{"path": str(d), "permissions": "0700"}]).returncode == 0
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert (
            run("SetFileOwner", [{"path": str(d), "owner": "1234", "group": "99"}]).returncode == 0
        )
        assert (d.stat().st_uid, d.stat().st_gid) == (1234, 99)
    (d / "x").write_text("x")
    assert run("DeleteFolder", [{"path": str(tmp_path / "a"), "force": True}]).returncode == 0
    assert not (tmp_path / "a").exists()


def test_package_actions_use_apt_get_and_fail_clearly_without_it() -> None:
    script = ACTIONS["InstallPackages"].script({"packages": ["nftables", "curl=7.88.1-10"]})
    assert "apt-get -y" in script and "install nftables curl=7.88.1-10" in script
    upgrade = ACTIONS["UpdateOS"].script({"exclude": ["linux-image-amd64"]})
    assert "apt-mark hold linux-image-amd64" in upgrade and " upgrade" in upgrade
    no_apt = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, env={"PATH": "/nonexistent"}
    )
    assert no_apt.returncode == 127 and "no supported package manager" in no_apt.stderr
    assert ACTIONS["Reboot"].reboots and "reboot" in ACTIONS["Reboot"].script({"delaySeconds": 2})


def test_bad_inputs_are_named() -> None:
    assert ACTIONS["ExecuteBash"].check({"command": ["x"]}) == "inputs is {commands: [...]}"
    assert "missing required key 'path'" in str(ACTIONS["CreateFile"].check([{"content": "x"}]))
    assert "permissions" in str(
        ACTIONS["SetFilePermissions"].check([{"path": "/x", "permissions": "rwx"}])
    )
    assert "unknown key" in str(ACTIONS["DeleteFile"].check([{"path": "/x", "recurse": True}]))
    assert "package names" in str(ACTIONS["InstallPackages"].check({"packages": ["a; rm -rf /"]}))
    assert "delaySeconds" in str(ACTIONS["Reboot"].check({"delaySeconds": -1}))
