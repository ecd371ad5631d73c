"""What a build runs on: the EC2 actions of a live ``kiln serve`` (``Ec2Port``) and a shell in
the guest (``GuestShell``). The CLI wires them (botocore, paramiko: kiln/builder/); the build
(build.py) sees only these protocols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    image_id: str
    instance_type: str
    key_name: str
    group_id: str
    block_devices: tuple[tuple[str, int | None, str | None, bool], ...]  # device, GiB, type, delete
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Launched:
    instance_id: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False


class GuestShell(Protocol):
    def run(self, script: str, timeout_s: int, output: Callable[[str], None]) -> RunResult:
        """Run the sh ``script`` as root; ``output`` gets each line of stdout and stderr as it
        comes. A script still running after ``timeout_s`` is killed (``timed_out``)."""
        ...

    def reboot(self, script: str, timeout_s: int) -> None:
        """Run ``script`` (which reboots the guest) and return once the guest is back (a new
        boot id) and a new session is open. Raises TimeoutError."""
        ...

    def close(self) -> None: ...


class GuestConnector(Protocol):
    def connect(self, host: str, port: int, private_key: str, timeout_s: float) -> GuestShell:
        """A root shell in the guest (root, or the image's default user through sudo).
        Raises TimeoutError when no session opens in time."""
        ...


class ImageLookup(Protocol):
    def describe_image(self, image_id: str) -> dict[str, object] | None:
        """The image as the caller sees it, or None."""
        ...

    def find_image_by_name(self, name: str) -> str | None:
        """The newest available image of that exact name the caller sees, or None."""
        ...


class Ec2Port(ImageLookup, Protocol):
    """The EC2 actions a build uses, each waiting for its result (a failure is KilnError)."""

    region: str

    def create_build_access(self, name: str) -> tuple[str, str]:
        """A key pair and a security group open on tcp/22, both called ``name``: (private
        key, group id)."""
        ...

    def delete_build_access(self, name: str, group_id: str) -> None:
        """Delete both (``group_id`` empty: only the key pair, if it was made)."""
        ...

    def launch(self, req: LaunchRequest) -> Launched:
        """RunInstances, then wait until it runs and its console says KILN-READY."""
        ...

    def stop(self, instance_id: str) -> None: ...

    def create_image(self, instance_id: str, name: str, description: str) -> str:
        """CreateImage of a stopped instance; returns once the image is available."""
        ...

    def terminate(self, instance_ids: list[str]) -> None: ...

    def deregister(self, image_id: str, region: str) -> None:
        """DeregisterImage and delete its snapshots."""
        ...

    def copy_image(
        self, image_id: str, region: str, name: str, description: str, kms_key_id: str | None
    ) -> str:
        """CopyImage from ``self.region`` into ``region``; returns once it is available."""
        ...

    def share(
        self, image_id: str, region: str, accounts: tuple[str, ...], public: bool
    ) -> None: ...

    def tag(self, image_id: str, region: str, tags: dict[str, str]) -> None: ...

    def deprecate(self, image_id: str, region: str, when: str) -> None: ...
