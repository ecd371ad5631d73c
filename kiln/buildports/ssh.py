"""`kiln build`'s root shell in a guest over SSH (paramiko; the GuestConnector of
kiln/services/builds/ports.py).

Root is tried first (the micro image); where root's key only prints "Please login as …"
(cloud-init's disable_root on debian), the image's default user (``admin``, as on EC2's Debian
AMIs) runs each script through ``sudo -n``. A script is sent on stdin to a file in /tmp and
run from there with stdin closed, so commands that read stdin (apt-get) cannot eat it."""

from __future__ import annotations

import io
import logging
import select
import time
from collections.abc import Callable

import paramiko

from kiln.services.builds.ports import RunResult

log = logging.getLogger(__name__)
USERS = ("root", "admin")
RETRY_S = 1.0
RECONNECT_S = 120.0  # a session lost between steps (kiln serve restarted): a new one within
#: The wrapper: the script arrives on stdin; its exit status is the command's.
WRAPPER = (
    'f=/tmp/kiln-step.$$; rm -f "$f"; (umask 077; cat > "$f") && {sudo}sh "$f" </dev/null; '
    'rc=$?; rm -f "$f"; exit $rc'
)


def _key(pem: str) -> paramiko.PKey:
    for cls in (paramiko.Ed25519Key, paramiko.RSAKey, paramiko.ECDSAKey):
        try:
            return cls.from_private_key(io.StringIO(pem))
        except (paramiko.SSHException, ValueError):
            continue
    raise ValueError("the build's private key is not an ed25519, RSA or ECDSA key")


#: Tries at opening a session channel before a step fails (see SshGuest._channel).
CHANNEL_ATTEMPTS = 3


class SshGuest:
    def __init__(self, host: str, port: int, pkey: paramiko.PKey, timeout_s: float) -> None:
        self.host, self.port, self.pkey = host, port, pkey
        self.client, self.sudo = self._open(timeout_s)

    def _open(self, timeout_s: float) -> tuple[paramiko.SSHClient, str]:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            for user in USERS:
                client = paramiko.SSHClient()
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a new guest's key
                try:
                    client.connect(
                        self.host,
                        port=self.port,
                        username=user,
                        pkey=self.pkey,
                        look_for_keys=False,
                        allow_agent=False,
                        timeout=30,
                        banner_timeout=30,
                        auth_timeout=30,
                    )
                    sudo = "" if user == "root" else "sudo -n "
                    _, out, _ = client.exec_command(f"{sudo}id -u", timeout=30)
                    if out.read().decode().strip() == "0":
                        log.info("build shell: %s@%s:%d", user, self.host, self.port)
                        return client, sudo
                    last = PermissionError(f"{user} is not root and has no sudo")
                except (OSError, EOFError, paramiko.SSHException) as e:
                    last = e
                client.close()
            time.sleep(RETRY_S)
        raise TimeoutError(f"no SSH session to {self.host}:{self.port}: {last}")

    def _channel(self) -> paramiko.Channel:
        """A session channel; a connection lost between steps, or one that refuses a channel
        (a loaded guest's dropbear can, just after connecting), is opened anew: nothing has run
        on it yet, so trying again is safe."""
        last: Exception | None = None
        for _ in range(CHANNEL_ATTEMPTS):
            transport = self.client.get_transport()
            if transport is not None and transport.is_active():
                try:
                    return transport.open_session(timeout=30)
                except (OSError, EOFError, paramiko.SSHException) as e:
                    last = e
            self.client.close()
            self.client, self.sudo = self._open(RECONNECT_S)
        raise paramiko.SSHException(f"no session channel to {self.host}:{self.port}: {last}")

    def run(self, script: str, timeout_s: int, output: Callable[[str], None]) -> RunResult:
        chan = self._channel()
        chan.exec_command(WRAPPER.format(sudo=self.sudo))
        chan.sendall(script.encode())
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        pending = {"out": b"", "err": b""}
        deadline = time.monotonic() + timeout_s

        def take(which: str, data: bytes, sink: bytearray) -> None:
            sink += data
            lines = (pending[which] + data).split(b"\n")
            pending[which] = lines.pop()
            for line in lines:
                output(line.decode(errors="replace"))

        timed_out = False
        while True:
            if chan.recv_ready():
                take("out", chan.recv(65536), out)
            elif chan.recv_stderr_ready():
                take("err", chan.recv_stderr(65536), err)
            elif (
                chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready()
            ):
                break
            elif time.monotonic() > deadline:
                timed_out = True
                break
            else:
                select.select([chan], [], [], 0.2)
        for which in ("out", "err"):
            if pending[which]:
                output(pending[which].decode(errors="replace"))
        if timed_out:
            chan.close()
            return RunResult(124, out.decode(errors="replace"), err.decode(errors="replace"), True)
        code = chan.recv_exit_status()
        chan.close()
        if code == -1:  # the channel closed without an exit status: the session was lost
            lost = "the SSH session to the guest was lost before the step finished"
            err += f"\n{lost}".encode()
            output(lost)
            return RunResult(255, out.decode(errors="replace"), err.decode(errors="replace"))
        return RunResult(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _boot_id(self) -> str:
        result = self.run("cat /proc/sys/kernel/random/boot_id\n", 60, lambda _l: None)
        return result.stdout.strip()

    def reboot(self, script: str, timeout_s: int) -> None:
        before = self._boot_id()
        self.run(script, 60, lambda _l: None)
        self.client.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(RETRY_S)
            try:
                self.client, self.sudo = self._open(max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            if self._boot_id() not in ("", before):
                return
            self.client.close()
        raise TimeoutError(f"the guest at {self.host}:{self.port} did not come back from a reboot")

    def close(self) -> None:
        self.client.close()


class SshConnector:
    def connect(self, host: str, port: int, private_key: str, timeout_s: float) -> SshGuest:
        return SshGuest(host, port, _key(private_key), timeout_s)
