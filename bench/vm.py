"""VM benchmark (not a test): launch latency vs image size, boot overhead vs bare QEMU, and the
cost of CreateImage after a small write into a big volume. ``python -m bench.vm``.

Everything runs for real: a `kiln serve` subprocess (TCG), the baked micro image, boto3.

1. RunInstances -> ``running`` for the 64 MiB micro image and the same disk grown to 8 GiB
   (first launch of each = restoring the base; then warm launches). Target: 8 GiB / 64 MiB ratio
   <= 1.2 and under 0.5 s.
2. Boot to ``KILN-READY``: RunInstances -> readiness line, vs the same QEMU command line (taken
   from the instance's ``vm.json``) started by hand on a fresh overlay of the same base with the
   same seed. Runs alternate. Target: Kiln adds <= 10 %.
   Kiln boots the micro image's kernel directly (kiln/compute/direct_boot.py): the same runs
   also time Kiln from QEMU's start (``vm.json`` is written just before it) and the firmware
   boot by hand — the same command line without ``-kernel/-initrd/-append``, SeaBIOS booting
   the disk through syslinux, as every boot did before. Target: Kiln's fast path, QEMU start
   -> KILN-READY, <= 3 s.
3. CreateImage after writing 10 MiB into the 8 GiB volume: time beyond the guest's shutdown
   (target < 2 s) and bytes the store read (target <= 2x the changed bytes).

``--kiln-src PATH`` also runs the kiln of another tree (e.g. ``git worktree add --detach DIR
COMMIT``) as ``kiln-base``: a second `kiln serve` (and its CLI: bake, account, snapshot import)
with ``PYTHONPATH`` and the working directory set to that tree, its own data dir and micro
image. Every measurement is then taken on both, runs alternating (kiln, kiln-base, kiln, ...),
so that the machine's other load falls on both alike; the table shows them side by side and the
JSON records both, the path and its commit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import paramiko
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from bench.machine import describe, machine_info
from kiln.compute.seed import make_nocloud_seed
from kiln.disks import overlay_changed_extents
from kiln.runtime import layout

KILN = [sys.executable, "-m", "kiln"]
REGION = "us-east-1"
GIB = 1024**3
MIB = 1024**2
WARM_RUNS = 3
BOOT_RUNS = 5
RESULTS = Path(__file__).parent / "results" / "vm.json"
TYPE = "t2.micro"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kiln:
    """One `kiln serve` under test and its CLI; ``src``: another tree's kiln (``--kiln-src``),
    run with that tree on ``PYTHONPATH`` and as the working directory (as bench/api.py does)."""

    def __init__(self, data_dir: Path, name: str = "kiln", src: Path | None = None) -> None:
        self.name = name
        self.src = src
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.env = {**os.environ, "KILN_ACCEL": "tcg"}
        if src is not None:
            self.env["PYTHONPATH"] = str(src)
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        res = subprocess.run(
            [*KILN, *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.src,
        )
        if res.returncode != 0:
            raise RuntimeError(f"{self.name}: kiln {' '.join(args)}: {res.stderr[-2000:]}")
        return res.stdout

    def _network_args(self) -> list[str]:
        """QEMU user networking where this kiln has the choice: the by-hand anchor replays a
        VM's QEMU command, which on a VPC network would need the instance's namespace and tap
        (boot times do not depend on it: docs/instances.md#benchmark)."""
        src = Path(self.src) if self.src is not None else Path(__file__).parents[1]
        serve = (src / "kiln" / "cli" / "serve.py").read_text()
        return ["--network", "user"] if '"--network"' in serve else []

    def start(self) -> None:
        log = open(self.data_dir / "serve.log", "ab")  # noqa: SIM115  # lives with the server
        self.proc = subprocess.Popen(
            [
                *KILN,
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                *self._network_args(),
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.src,
        )
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: kiln serve exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name}: kiln serve did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)

    def client(self, creds: dict[str, str]) -> Any:
        return boto3.client(
            "ec2",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1}),
        )

    def run_dir(self, iid: str) -> Path:
        return layout.instance_dir(self.data_dir, REGION, iid)

    def log(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")


def _wait(probe: Any, timeout: float = 300.0, step: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(step)
    raise TimeoutError("benchmark step timed out")


def _state(ec2: Any, iid: str) -> str:
    return str(
        ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"][
            "Name"
        ]
    )


def _ready(console: Path, iid: str) -> bool:
    try:
        return f"KILN-READY instance-id={iid}".encode() in console.read_bytes()
    except OSError:
        return False


def launch(kiln: Kiln, ec2: Any, image_id: str, key: str | None = None) -> dict[str, Any]:
    """RunInstances -> running -> KILN-READY, timed from the request."""
    t0 = time.perf_counter()
    kw = {"KeyName": key} if key else {}
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType=TYPE, **kw)[
        "Instances"
    ][0]["InstanceId"]
    answered = time.perf_counter() - t0
    _wait(lambda: _state(ec2, iid) == "running")
    running = time.perf_counter() - t0
    _wait(lambda: _ready(kiln.run_dir(iid) / "console.log", iid), step=0.02)
    ready = time.perf_counter() - t0
    # QEMU's start: vm.json is written just before kiln/compute/qemu.py spawns it
    vm_json = kiln.run_dir(iid) / "vm.json"
    from_qemu = time.time() - vm_json.stat().st_mtime - (time.perf_counter() - t0 - ready)
    boot = json.loads(vm_json.read_text()).get("boot", "firmware")
    return {
        "iid": iid,
        "answered": answered,
        "running": running,
        "ready": ready,
        "qemu_to_ready": from_qemu,
        "boot": boot,
    }


def terminate(ec2: Any, iids: list[str]) -> None:
    ec2.terminate_instances(InstanceIds=iids)
    for iid in iids:
        _wait(lambda i=iid: _state(ec2, i) == "terminated", step=0.1)


@dataclass(frozen=True, slots=True)
class Template:
    """An instance's QEMU command line (its ``vm.json``), the run directory and id it names."""

    iid: str
    run_dir: str
    argv: list[str]


def template(kiln: Kiln, iid: str) -> Template:
    run = kiln.run_dir(iid)
    return Template(iid, str(run.resolve()), json.loads((run / "vm.json").read_text())["argv"])


def firmware_argv(argv: list[str]) -> list[str]:
    """``argv`` without its direct kernel boot: the firmware boots the first disk."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in ("-kernel", "-initrd", "-append"):
            skip = True
        else:
            out.append(a)
    if "-kernel" in argv:  # the boot disk takes back bootindex 0 (see kiln/compute/qemu.py)
        i = next(i for i, a in enumerate(out) if a.startswith("virtio-blk-pci,drive=disk0"))
        out[i] += ",bootindex=0"
    return out


def bare_boot(tpl: Template, base: Path, work: Path, firmware: bool = False) -> float:
    """The instance's own QEMU command line (``firmware``: without its direct kernel boot), on
    a fresh overlay of the same base and a seed of the same shape, started by hand: spawn ->
    KILN-READY."""
    template_iid, old_run = tpl.iid, tpl.run_dir
    argv = firmware_argv(tpl.argv) if firmware else tpl.argv
    iid = "i-" + secrets.token_hex(9)[:17]
    run = work / iid
    run.mkdir(parents=True)
    overlay = run / "root.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(overlay)],
        check=True,
    )
    seed = make_nocloud_seed(run / "seed.iso", iid, iid, [], None)
    port = _free_port()
    out = []
    for a in argv:
        if a.startswith("file=") and ",format=qcow2," in a:
            a = re.sub(r"^file=[^,]*(?:,,[^,]*)*", f"file={overlay}", a)
        elif a.startswith("file=") and "readonly=on" in a:
            a = re.sub(r"^file=[^,]*(?:,,[^,]*)*", f"file={seed}", a)
        a = a.replace(old_run, str(run)).replace(template_iid, iid)
        a = re.sub(r"hostfwd=tcp:127\.0\.0\.1:\d+-:22", f"hostfwd=tcp:127.0.0.1:{port}-:22", a)
        out.append(a)
    t0 = time.perf_counter()
    subprocess.run(out, cwd=run, check=True, capture_output=True)
    _wait(lambda: _ready(run / "console.log", iid), step=0.02)
    took = time.perf_counter() - t0
    pid = int((run / "qemu.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    _wait(
        lambda: (
            not Path(f"/proc/{pid}").exists() or b") Z" in Path(f"/proc/{pid}/stat").read_bytes()
        ),
        step=0.05,
    )
    shutil.rmtree(run, ignore_errors=True)
    return took


def ssh(ec2: Any, iid: str, key_file: Path, command: str) -> str:
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    host, port = inst["PublicDnsName"].split(":")
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    c.connect(
        host,
        port=int(port),
        username="root",
        look_for_keys=False,
        allow_agent=False,
        pkey=paramiko.Ed25519Key.from_private_key_file(str(key_file)),
        timeout=60,
    )
    try:
        _, out, _ = c.exec_command(command, timeout=120)
        return str(out.read().decode())
    finally:
        c.close()


def create_image_cost(
    kiln: Kiln,
    ec2: Any,
    image_id: str,
    key: str,
    key_file: Path,
    no_reboot: bool,
    iid: str | None = None,
) -> dict[str, Any]:
    if iid is None:
        iid = launch(kiln, ec2, image_id, key)["iid"]
    ssh(
        ec2,
        iid,
        key_file,
        f"dd if=/dev/urandom of=/root/blob-{secrets.token_hex(3)} bs=1M count=10 2>/dev/null; sync",
    )
    vol = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "BlockDeviceMappings"
    ][0]["Ebs"]["VolumeId"]
    overlay = layout.volume_path(kiln.data_dir, REGION, vol)
    changed = sum(e.length for e in overlay_changed_extents(overlay))
    pid = int((kiln.run_dir(iid) / "qemu.pid").read_text())
    t0 = time.perf_counter()
    new = ec2.create_image(
        InstanceId=iid, Name=f"bench-{secrets.token_hex(4)}", NoReboot=no_reboot
    )["ImageId"]
    shutdown = 0.0
    if not no_reboot:
        _wait(
            lambda: (
                not Path(f"/proc/{pid}").exists()
                or b") Z" in Path(f"/proc/{pid}/stat").read_bytes()
            ),
            step=0.02,
        )
        shutdown = time.perf_counter() - t0
    _wait(
        lambda: ec2.describe_images(ImageIds=[new])["Images"][0]["State"] == "available", step=0.02
    )
    total = time.perf_counter() - t0
    snap = ec2.describe_images(ImageIds=[new])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    m = re.search(rf"imported {snap}: (\d+) bytes virtual, (\d+) read", kiln.log())
    read = int(m.group(2)) if m else -1
    return {
        "iid": iid,
        "no_reboot": no_reboot,
        "total": total,
        "shutdown": shutdown,
        "beyond_shutdown": total - shutdown,
        "changed_bytes": changed,
        "read_bytes": read,
        "written_bytes": 10 * MIB,
        "virtual_size": int(m.group(1)) if m else -1,
    }


@dataclass
class Rig:
    """One kiln under test, set up: its account's client, the two images, a key pair."""

    kiln: Kiln
    ec2: Any
    micro_snap: str
    images: dict[str, str]  # "64MiB" / "8GiB" -> image id
    key_file: Path

    @property
    def name(self) -> str:
        return self.kiln.name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.vm", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument(
        "--kiln-src",
        type=Path,
        default=None,
        help="also run the kiln of this tree (e.g. a `git worktree` of a commit) as 'kiln-base', "
        "a second `kiln serve` beside this tree's, every measurement alternating between them",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    p.add_argument(
        "--boot-runs", type=int, default=BOOT_RUNS, help="boots to KILN-READY of each kind"
    )
    return p.parse_args(argv)


def _commit(src: Path) -> str | None:
    res = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return (res.stdout.strip() or None) if res.returncode == 0 else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    src = args.kiln_src.resolve() if args.kiln_src is not None else None
    if src is not None and not (src / "kiln" / "__init__.py").is_file():
        raise SystemExit(f"--kiln-src {src}: no kiln/ package there")
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="kiln-bench-vm-") as d:
        data = Path(d)
        kilns = [Kiln(data / "kiln")]
        if src is not None:
            kilns.append(Kiln(data / "kiln-base", "kiln-base", src))
        try:
            rigs = []
            for kiln in kilns:
                baked = json.loads(kiln.cli("bake", "micro", "--json"))
                kiln.start()
                rigs.append(prepare(kiln, baked))
            measured = run_all(rigs, data, args.boot_runs)
        finally:
            for kiln in kilns:
                kiln.stop()
            for p in Path("/proc").iterdir():  # leave no VM of ours behind
                try:
                    if p.name.isdigit() and str(data).encode() in (p / "cmdline").read_bytes():
                        os.kill(int(p.name), signal.SIGKILL)
                except OSError:
                    pass
    info = machine_info()
    results = {
        **measured,
        "kiln_src": str(src) if src is not None else None,
        "kiln_src_commit": _commit(src) if src is not None else None,
        "kiln_commit": _commit(Path(__file__).resolve().parent.parent),
        "targets": {
            "launch_ratio": 1.2,
            "launch_s": 0.5,
            "boot_overhead": 0.10,
            "kiln_qemu_ready_s": 3.0,
            "create_image_beyond_shutdown_s": 2.0,
            "read_over_changed": 2.0,
        },
        "loadavg_start": loadavg_start,
        "machine": info,
        "machine_text": describe(info),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    Console(width=160).print(
        f"{results['machine_text']}; load at start {loadavg_start}; wrote {args.out}"
    )


def prepare(kiln: Kiln, baked: list[dict[str, Any]]) -> Rig:
    """An account on ``kiln``, the micro image and its 8 GiB copy, a key pair."""
    creds = json.loads(kiln.cli("account", "create", "--name", "bench"))
    ec2 = kiln.client(creds)
    micro = next(r for r in baked if r["Region"] == REGION)
    micro_snap = micro["SnapshotId"]
    # The 8 GiB image: the micro disk, grown (sparse) to 8 GiB, imported as the account's own.
    raw = kiln.data_dir / "micro-8g.raw"
    kiln.cli("snapshot", "export", micro_snap, str(raw), "--region", REGION)
    os.truncate(raw, 8 * GIB)
    big_snap = json.loads(
        kiln.cli(
            "snapshot",
            "import",
            str(raw),
            "--region",
            REGION,
            "--account",
            creds["AccountId"],
            "--json",
        )
    )["snapshot_id"]
    raw.unlink()
    big = ec2.register_image(
        Name="micro-8g",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BootMode="legacy-bios",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": big_snap}}],
    )["ImageId"]
    key_file = kiln.data_dir / "bench.pem"
    key_file.write_text(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
    return Rig(kiln, ec2, micro_snap, {"64MiB": micro["ImageId"], "8GiB": big}, key_file)


def run_all(rigs: list[Rig], data: Path, boot_runs: int = BOOT_RUNS) -> dict[str, Any]:
    """Every measurement on every rig, runs alternating between the rigs."""
    launches: dict[str, dict[str, list[dict[str, Any]]]] = {
        r.name: {"64MiB": [], "8GiB": []} for r in rigs
    }
    for _ in range(WARM_RUNS + 1):  # the first launch of each is the cold one
        for rig in rigs:
            for label, image in rig.images.items():
                res = launch(rig.kiln, rig.ec2, image)
                launches[rig.name][label].append(res)
                terminate(rig.ec2, [res["iid"]])

    # Each rig's own QEMU command line, from one instance of the micro image (then terminated,
    # so that no idle guest runs beside the timed boots; its base stays, as the image does).
    templates: dict[str, Template] = {}
    for rig in rigs:
        res = launch(rig.kiln, rig.ec2, rig.images["64MiB"])
        templates[rig.name] = template(rig.kiln, res["iid"])
        terminate(rig.ec2, [res["iid"]])
    boot: dict[str, dict[str, list[Any]]] = {
        r.name: {"kiln": [], "kiln_qemu": [], "kiln_boot": [], "bare": [], "firmware": []}
        for r in rigs
    }
    for _ in range(boot_runs):
        for rig in rigs:
            res = launch(rig.kiln, rig.ec2, rig.images["64MiB"])
            boot[rig.name]["kiln"].append(res["ready"])
            boot[rig.name]["kiln_qemu"].append(res["qemu_to_ready"])
            boot[rig.name]["kiln_boot"].append(res["boot"])
            terminate(rig.ec2, [res["iid"]])
            base = layout.bases_dir(rig.kiln.data_dir, REGION) / f"{rig.micro_snap}.raw"
            work = rig.kiln.data_dir / "bare"
            boot[rig.name]["bare"].append(bare_boot(templates[rig.name], base, work))
            boot[rig.name]["firmware"].append(
                bare_boot(templates[rig.name], base, work, firmware=True)
            )

    create: dict[str, list[dict[str, Any]]] = {}
    for rig in rigs:  # one at a time: no other guest runs during a rig's CreateImage
        kiln, ec2, big = rig.kiln, rig.ec2, rig.images["8GiB"]
        reboot = create_image_cost(kiln, ec2, big, "bench", rig.key_file, no_reboot=False)
        ec2.get_waiter("instance_running").wait(InstanceIds=[reboot["iid"]])
        _wait(lambda k=kiln, i=reboot["iid"]: _ready(k.run_dir(i) / "console.log", i))
        no_reboot = create_image_cost(
            kiln, ec2, big, "bench", rig.key_file, no_reboot=True, iid=reboot["iid"]
        )
        terminate(ec2, [reboot["iid"]])
        create[rig.name] = [reboot, no_reboot]

    return {rig.name: summary(launches[rig.name], boot[rig.name], create[rig.name]) for rig in rigs}


def summary(
    launches: dict[str, list[dict[str, Any]]],
    boot: dict[str, list[Any]],
    create: list[dict[str, Any]],
) -> dict[str, Any]:
    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    warm = {k: med([r["running"] for r in v[1:]]) for k, v in launches.items()}
    return {
        "launch": {
            k: {
                "cold_running_s": v[0]["running"],
                "warm_running_s": warm[k],
                "warm_answer_s": med([r["answered"] for r in v[1:]]),
                "warm_runs": [r["running"] for r in v[1:]],
            }
            for k, v in launches.items()
        },
        "launch_ratio_8g_to_64m": warm["8GiB"] / warm["64MiB"],
        "boot": {
            "kiln_ready_s": med(boot["kiln"]),
            "bare_ready_s": med(boot["bare"]),
            "kiln_runs": boot["kiln"],
            "bare_runs": boot["bare"],
            "overhead": med(boot["kiln"]) / med(boot["bare"]) - 1,
            "overhead_best": min(boot["kiln"]) / min(boot["bare"]) - 1,
            "kiln_qemu_ready_s": med(boot["kiln_qemu"]),
            "firmware_ready_s": med(boot["firmware"]),
            "kiln_qemu_runs": boot["kiln_qemu"],
            "firmware_runs": boot["firmware"],
            "kiln_boot_kinds": boot["kiln_boot"],
            "speedup_vs_firmware": med(boot["firmware"]) / med(boot["kiln_qemu"]),
        },
        "create_image": create,
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measurement, result, target) for one kiln's results."""
    out = []
    for label in ("64MiB", "8GiB"):
        x = r["launch"][label]
        out.append(
            (
                f"RunInstances -> running, {label} (warm median; cold)",
                f"{x['warm_running_s']:.3f} s; {x['cold_running_s']:.3f} s",
                "< 0.5 s",
            )
        )
    out.append(("  ratio 8 GiB / 64 MiB (warm)", f"{r['launch_ratio_8g_to_64m']:.2f}", "<= 1.2"))
    b = r["boot"]
    out.append(
        ("boot to KILN-READY: Kiln (RunInstances ->), median", f"{b['kiln_ready_s']:.2f} s", "")
    )
    out.append(
        (
            "boot to KILN-READY: the same QEMU command by hand, median",
            f"{b['bare_ready_s']:.2f} s",
            "",
        )
    )
    kinds = ",".join(sorted(set(b.get("kiln_boot_kinds", []))))
    out.append(
        (
            f"boot to KILN-READY: Kiln ({kinds}), QEMU start ->, median",
            f"{b['kiln_qemu_ready_s']:.2f} s",
            "<= 3 s",
        )
    )
    out.append(
        (
            "boot to KILN-READY: firmware (SeaBIOS + syslinux) by hand, median",
            f"{b['firmware_ready_s']:.2f} s",
            "",
        )
    )
    out.append(("  firmware / Kiln fast path (medians)", f"{b['speedup_vs_firmware']:.2f}x", ""))
    out.append(
        (
            "  Kiln overhead (medians; best runs)",
            f"{b['overhead'] * 100:+.1f} %; {b['overhead_best'] * 100:+.1f} %",
            "<= 10 %",
        )
    )
    for c in r["create_image"]:
        mode = "NoReboot" if c["no_reboot"] else "reboot"
        out.append(
            (f"CreateImage ({mode}) after 10 MiB into 8 GiB: total", f"{c['total']:.2f} s", "")
        )
        if not c["no_reboot"]:
            out.append(("  guest shutdown", f"{c['shutdown']:.2f} s", ""))
        out.append(("  beyond the shutdown", f"{c['beyond_shutdown']:.2f} s", "< 2 s"))
        ratio = c["read_bytes"] / c["changed_bytes"] if c["changed_bytes"] else float("nan")
        out.append(
            (
                "  bytes read by the store / changed in the overlay",
                f"{c['read_bytes'] / MIB:.1f} / {c['changed_bytes'] / MIB:.1f} MiB ({ratio:.2f}x)",
                "<= 2x",
            )
        )
    return out


def report(r: dict[str, Any]) -> None:
    names = [n for n in ("kiln", "kiln-base") if n in r]
    title = "Kiln VMs (TCG, micro image)"
    if r.get("kiln_src"):
        title += f"; kiln-base: {r['kiln_src']} @ {(r.get('kiln_src_commit') or '?')[:10]}"
    t = Table(title=title)
    t.add_column("measurement")
    for n in names:
        t.add_column(n, justify="right")
    t.add_column("target", justify="right")
    per = [rows(r[n]) for n in names]
    for i, (label, _, target) in enumerate(per[0]):
        t.add_row(label, *(p[i][1] for p in per), target)
    Console(width=160).print(t)
    for n in names:
        b = r[n]["boot"]
        Console(width=160).print(
            f"{n}: boots to KILN-READY, Kiln "
            + " ".join(f"{x:.2f}" for x in b["kiln_runs"])
            + " s (from QEMU start "
            + " ".join(f"{x:.2f}" for x in b["kiln_qemu_runs"])
            + " s); by hand "
            + " ".join(f"{x:.2f}" for x in b["bare_runs"])
            + " s; firmware by hand "
            + " ".join(f"{x:.2f}" for x in b["firmware_runs"])
            + " s; warm launches 64MiB "
            + " ".join(f"{x:.3f}" for x in r[n]["launch"]["64MiB"]["warm_runs"])
            + ", 8GiB "
            + " ".join(f"{x:.3f}" for x in r[n]["launch"]["8GiB"]["warm_runs"])
            + " s"
        )


if __name__ == "__main__":
    main()
