"""API benchmark (issue 3): Kiln's EC2 image API side by side with moto's server, same calls.

One run starts a real ``kiln serve`` (temp data dir, SQLite catalog) and ``moto_server``
(``MOTO_EC2_LOAD_DEFAULT_AMIS=false``), three owner accounts on each (Kiln: ``kiln account
create``; moto: STS AssumeRole into the same 12-digit ids) and one small snapshot per owner
(Kiln: ``kiln snapshot import --account``; moto: CreateVolume + CreateSnapshot). For each size
(default 1k, 10k, 100k images in total) it then, on both servers:

- registers the missing images with boto3 RegisterImage (EBS root on the owner's snapshot) from
  ``--threads`` client threads and reports images/s; image ``i`` is owned by account ``i % 3``,
  named ``app-team<i // 100>-<i>`` (a team = 100 consecutive images, so a team's name prefix
  selects the same images at every size) and half of them get a ``stage`` tag
  (``release`` if ``i % 4 == 0``, ``dev`` if ``i % 4 == 2``) by batched CreateTags (untimed);
- times ``--calls`` DescribeImages calls from owner 0: ``Owners=[owner 0]``,
  ``name=app-team3-*``, ``tag:stage=release`` (after 5 warm-up calls; each call must return the
  expected images) and reports p50 / p99 / mean in milliseconds. The two servers' calls
  alternate (kiln, moto, kiln, …) so both see the same background load; timing stops after
  ``--describe-budget`` seconds once each has 20 calls.

Kiln past ``--kiln-api-max`` images (default 10k) is filled through the catalog layer directly
(``kiln.catalog.images.register_images``, copies of the owner's API-registered image); the
output says so. Moto has no such path: it is loaded through the API until ``--moto-budget``
seconds of loading are spent, and then measured at the count it reached (said in the output).
Run from the repository root: ``.venv/bin/python -m bench.api [--sizes 1000,10000]``; writes
bench/results/api.json. A benchmark, not a test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from bench.machine import describe, machine_info

REGION = "us-east-1"
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
TEAM_SIZE = 100
QUERY_TEAM = 3
NAME_FILTER = f"app-team{QUERY_TEAM}-*"
WARMUP = 5
RESULTS = Path(__file__).parent / "results" / "api.json"
Client = Any  # a botocore EC2 client (generated class, untyped)


@dataclass(frozen=True, slots=True)
class Creds:
    account_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass
class Target:
    """One server under test, its owners and their snapshots, and the images loaded so far."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    owners: list[Creds] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    images: dict[int, str] = field(default_factory=dict)  # image number -> image id
    load_seconds: float = 0.0  # spent loading through the API (moto's budget)
    data_dir: Path | None = None  # Kiln's

    def client(self, owner: int) -> Client:
        c = self.owners[owner]
        session = boto3.session.Session()
        return session.client(
            "ec2",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key,
            aws_session_token=c.session_token,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=32),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def image_name(i: int) -> str:
    return f"app-team{i // TEAM_SIZE}-{i}"


def stage_tag(i: int) -> str | None:
    return "release" if i % 4 == 0 else "dev" if i % 4 == 2 else None


def expected_hits(numbers: set[int] | dict[int, str]) -> int:
    return sum(
        1
        for i in numbers
        if i % 3 == 0 and i // TEAM_SIZE == QUERY_TEAM and stage_tag(i) == "release"
    )


# -- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up: {log.read_text()[-2000:]}")


def _src_env(src: Path | None) -> dict[str, str] | None:
    """Run another tree's kiln (``--kiln-src``): on the path, and as the working directory."""
    return None if src is None else {**os.environ, "PYTHONPATH": str(src)}


def _kiln(*args: str, src: Path | None = None) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "kiln", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_src_env(src),
        cwd=src,
    )
    if res.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)}: {res.stderr}")
    return res.stdout


def start_kiln(work: Path, name: str = "kiln", src: Path | None = None) -> Target:
    data = work / name
    data.mkdir()
    port = free_port()
    log = work / f"{name}-serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiln", "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=_src_env(src),
        cwd=src,
    )
    target = Target(name, f"http://127.0.0.1:{port}", proc, data_dir=data)
    _wait_http(f"{target.url}/healthz", proc, log)
    disk = work / "disk.raw"
    with disk.open("wb") as f:  # 8 MiB sparse disk with a few non-zero blocks
        f.truncate(8 << 20)
        f.write(b"kiln-bench" * 1000)
    for n, account in enumerate(ACCOUNTS):
        doc = json.loads(
            _kiln(
                "account",
                "create",
                "--name",
                f"bench-owner-{n}",
                "--account-id",
                account,
                "--data-dir",
                str(data),
                src=src,
            )
        )
        target.owners.append(Creds(account, doc["AccessKeyId"], doc["SecretAccessKey"]))
        snap = json.loads(
            _kiln(
                "snapshot",
                "import",
                str(disk),
                "--account",
                account,
                "--region",
                REGION,
                "--data-dir",
                str(data),
                "--json",
                src=src,
            )
        )
        target.snapshots.append(str(snap["snapshot_id"]))
    return target


def start_moto(work: Path) -> Target:
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        raise SystemExit(
            "moto_server missing: .venv/bin/pip install 'moto[server]' "
            "(pyproject extra 'bench'; scripts/install with KILN_INSTALL_BENCH=1)"
        )
    port = free_port()
    log = work / "moto-server.log"
    env = {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    target = Target("moto", f"http://127.0.0.1:{port}", proc)
    _wait_http(f"{target.url}/moto-api/data.json", proc, log)
    sts = boto3.client(
        "sts",
        endpoint_url=target.url,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    for account in ACCOUNTS:
        cred = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/bench", RoleSessionName="bench"
        )["Credentials"]
        target.owners.append(
            Creds(account, cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"])
        )
        ec2 = target.client(len(target.owners) - 1)
        vol = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
        target.snapshots.append(ec2.create_snapshot(VolumeId=vol)["SnapshotId"])
    return target


# -- loading ------------------------------------------------------------------------------


def _register(client: Client, snapshot: str, i: int) -> str:
    return str(
        client.register_image(
            Name=image_name(i),
            Description=f"bench image {i}",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            EnaSupport=True,
            BlockDeviceMappings=[
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "SnapshotId": snapshot,
                        "VolumeType": "gp3",
                        "DeleteOnTermination": True,
                    },
                }
            ],
        )["ImageId"]
    )


def register_api(
    target: Target, numbers: range, threads: int, budget: float | None
) -> tuple[int, float]:
    """RegisterImage for ``numbers`` from ``threads`` clients, stopping after ``budget``
    seconds if given; (images registered, seconds)."""
    todo: Iterator[int] = iter(numbers)
    lock = threading.Lock()
    errors: list[BaseException] = []
    clients = [[target.client(o) for o in range(len(ACCOUNTS))] for _ in range(threads)]

    def work(mine: list[Client]) -> None:
        while not errors and (deadline is None or time.monotonic() < deadline):
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                image_id = _register(mine[i % 3], target.snapshots[i % 3], i)
            except BaseException as e:  # reported by the main thread
                errors.append(e)
                return
            with lock:
                target.images[i] = image_id

    before = len(target.images)
    start = time.perf_counter()
    deadline = None if budget is None else time.monotonic() + budget
    workers = [threading.Thread(target=work, args=(c,)) for c in clients]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{target.name} RegisterImage failed: {errors[0]!r}")
    return len(target.images) - before, seconds


def tag_api(target: Target, numbers: range, batch: int = 200) -> None:
    """CreateTags stage=<value> on the tagged images of ``numbers``, ``batch`` ids per call."""
    clients = [target.client(o) for o in range(len(ACCOUNTS))]
    groups: dict[tuple[int, str], list[str]] = {}
    for i in numbers:
        value = stage_tag(i)
        if value is not None and i in target.images:
            groups.setdefault((i % 3, value), []).append(target.images[i])
    for (owner, value), ids in groups.items():
        for k in range(0, len(ids), batch):
            clients[owner].create_tags(
                Resources=ids[k : k + batch], Tags=[{"Key": "stage", "Value": value}]
            )


def bulk_kiln(target: Target, numbers: range) -> tuple[int, float]:
    """Insert images straight through the catalog layer, NOT the API: each is a copy of its
    owner's API-registered image (block device mapping included) with a new id and name,
    written with ``kiln.catalog.images.register_images`` and ``kiln.catalog.tags.add_tags``
    (executemany, 5000 per transaction) beside the live server (SQLite WAL)."""
    from kiln.catalog import images as cat_images
    from kiln.catalog import open_catalog
    from kiln.catalog import tags as cat_tags
    from kiln.catalog.records import ImageRecord, TagRecord, utc_now
    from kiln.runtime import layout
    from kiln.types import new_id

    assert target.data_dir is not None
    data = target.data_dir
    catalog = open_catalog(layout.catalog_url(data), layout.master_key_path(data))
    start = time.perf_counter()
    try:
        with catalog.read() as tx:
            found = [
                cat_images.get_image(tx, target.images[o], ACCOUNTS[o])
                for o in range(len(ACCOUNTS))
            ]
        templates = [t for t in found if t is not None]
        assert len(templates) == len(ACCOUNTS)
        for k in range(numbers.start, numbers.stop, 5000):
            images: list[ImageRecord] = []
            tags: dict[str, list[TagRecord]] = {a: [] for a in ACCOUNTS}
            for i in range(k, min(k + 5000, numbers.stop)):
                tpl = templates[i % 3]
                image = replace(
                    tpl,
                    image_id=new_id("ami"),
                    name=image_name(i),
                    description=f"bench image {i}",
                    creation_date=utc_now(),
                    image_location=f"{tpl.owner_id}/{image_name(i)}",
                    tags=(),
                )
                images.append(image)
                value = stage_tag(i)
                if value is not None:
                    tags[tpl.owner_id].append(TagRecord(image.image_id, "image", "stage", value))
                target.images[i] = image.image_id
            with catalog.write() as tx:
                cat_images.register_images(tx, images)
                for owner, rows in tags.items():
                    cat_tags.add_tags(tx, rows, REGION, owner)
    finally:
        catalog.close()
    return len(numbers), time.perf_counter() - start


def load(
    target: Target, size: int, threads: int, kiln_api_max: int, moto_budget: float
) -> list[dict[str, object]]:
    """Bring ``target`` to ``size`` images; one result row per way of loading used."""
    rows: list[dict[str, object]] = []
    have = max(target.images, default=-1) + 1
    api_stop = size if target.name == "moto" else max(have, min(size, kiln_api_max))
    budget = moto_budget - target.load_seconds if target.name == "moto" else None
    if api_stop > have and (budget is None or budget > 0):
        numbers = range(have, api_stop)
        done, seconds = register_api(target, numbers, threads, budget)
        target.load_seconds += seconds
        tag_api(target, numbers)
        rows.append(
            {
                "server": target.name,
                "via": "api",
                "from": have,
                "to": have + done,
                "images": done,
                "seconds": round(seconds, 3),
                "threads": threads,
                "per_s": round(done / seconds, 1) if seconds else None,
                "complete": done == len(numbers),
            }
        )
    if target.name == "kiln" and size > api_stop:
        done, seconds = bulk_kiln(target, range(api_stop, size))
        rows.append(
            {
                "server": "kiln",
                "via": "catalog",
                "from": api_stop,
                "to": size,
                "images": done,
                "seconds": round(seconds, 3),
                "threads": 1,
                "per_s": round(done / seconds, 1),
                "complete": True,
            }
        )
    return rows


# -- measuring ----------------------------------------------------------------------------

QUERY = {
    "Owners": [ACCOUNTS[0]],
    "Filters": [
        {"Name": "name", "Values": [NAME_FILTER]},
        {"Name": "tag:stage", "Values": ["release"]},
    ],
}


def _timed_describe(target: Target, client: Client, want: int) -> float:
    """One DescribeImages call (owner + name wildcard + tag filter), checked; milliseconds."""
    start = time.perf_counter()
    got = client.describe_images(**QUERY)["Images"]
    elapsed = time.perf_counter() - start
    if len(got) != want or any(not im["Name"].startswith(f"app-team{QUERY_TEAM}-") for im in got):
        raise RuntimeError(
            f"{target.name}: DescribeImages returned {len(got)} images, expected {want}"
        )
    return elapsed * 1000


def describe_latency(
    targets: list[Target], calls: int, budget: float
) -> dict[str, dict[str, object]]:
    """``calls`` timed DescribeImages from owner 0 on each target, interleaved call by call
    (kiln, moto, kiln, …) so that both servers see the same background load on a shared
    machine; stops after ``budget`` seconds once every target has 20 calls."""
    clients = [t.client(0) for t in targets]
    wants = [expected_hits(t.images) for t in targets]
    for target, client, want in zip(targets, clients, wants, strict=True):
        for _ in range(WARMUP):
            _timed_describe(target, client, want)
    times: list[list[float]] = [[] for _ in targets]
    stop = time.monotonic() + budget
    for n in range(calls):
        if n >= 20 and time.monotonic() > stop:
            break
        for k, (target, client, want) in enumerate(zip(targets, clients, wants, strict=True)):
            times[k].append(_timed_describe(target, client, want))
    out: dict[str, dict[str, object]] = {}
    for target, want, ts in zip(targets, wants, times, strict=True):
        cuts = statistics.quantiles(ts, n=100, method="inclusive")
        out[target.name] = {
            "images": len(target.images),
            "hits": want,
            "calls": len(ts),
            "p50_ms": round(statistics.median(ts), 2),
            "p99_ms": round(cuts[98], 2),
            "mean_ms": round(statistics.fmean(ts), 2),
        }
    return out


def verdicts(describe: dict[str, dict[str, dict[str, object]]]) -> dict[str, object]:
    """Target checks: Kiln p50 at 10k <= moto's / 5; growth exponent of p50 over the sizes."""
    out: dict[str, object] = {}
    at10k = describe.get("10000", {})
    if "kiln" in at10k and "moto" in at10k:
        ratio = float(str(at10k["moto"]["p50_ms"])) / float(str(at10k["kiln"]["p50_ms"]))
        out["moto_over_kiln_p50_at_10k"] = round(ratio, 2)
        out["p50_at_10k_target_met"] = ratio >= 5
    for server in ("kiln", "moto"):
        points = [
            (float(str(d[server]["images"])), float(str(d[server]["p50_ms"])))
            for d in describe.values()
            if server in d
        ]
        if len(points) >= 2 and points[-1][0] > points[0][0] > 0:
            (n0, t0), (n1, t1) = points[0], points[-1]
            # p50 ~ images^k: k < 1 is sub-linear growth.
            out[f"{server}_p50_growth_exponent"] = round(math.log(t1 / t0) / math.log(n1 / n0), 3)
    return out


# -- report -------------------------------------------------------------------------------


def _k(n: object) -> str:
    v = int(str(n))
    return f"{v // 1000}k" if v % 1000 == 0 and v else str(v)


def table_rows(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, Kiln, moto, Kiln's advantage) rows shared by the terminal and markdown."""
    rows: list[tuple[str, str, str, str]] = []
    by_stage: dict[int, dict[str, dict[str, Any]]] = {}
    for r in out["register"]:
        by_stage.setdefault(int(r["stage"]), {})[f"{r['server']}-{r['via']}"] = r
    for stage, got in sorted(by_stage.items()):
        k, m = got.get("kiln-api"), got.get("moto-api")
        bulk = got.get("kiln-catalog")
        kiln_cell = f"{k['per_s']:.0f}/s ({_k(k['from'])}→{_k(k['to'])})" if k else "—"
        if bulk:
            kiln_cell += f"; catalog bulk {_k(bulk['from'])}→{_k(bulk['to'])} (not API)"
        moto_cell = (
            (
                f"{m['per_s']:.0f}/s ({_k(m['from'])}→{m['to']:,}"
                f"{'' if m['complete'] else ', budget hit'})"
            )
            if m
            else "—"
        )
        adv = f"{k['per_s'] / m['per_s']:.1f}×" if k and m and m["per_s"] else ""
        rows.append(
            (
                f"RegisterImage to {_k(stage)} images, {out['config']['threads']} threads",
                kiln_cell,
                moto_cell,
                adv,
            )
        )
    describe: dict[str, dict[str, dict[str, Any]]] = out["describe"]
    for size, d in describe.items():
        k, m = d.get("kiln"), d.get("moto")
        for q in ("p50_ms", "p99_ms"):
            label = f"DescribeImages {q[:3]} at {_k(size)} images"
            kc = f"{k[q]:.2f} ms" if k else "—"
            mc = (
                (
                    f"{m[q]:.2f} ms"
                    + ("" if m["images"] == int(size) else f" (at {m['images']:,} images)")
                )
                if m
                else "—"
            )
            if q == "p99_ms":
                kc += f" ({k['calls']} calls)" if k else ""
                mc += f" ({m['calls']} calls)" if m else ""
            adv = f"{m[q] / k[q]:.1f}×" if k and m else ""
            rows.append((label, kc, mc, adv))
    return rows


def print_table(console: Console, out: dict[str, Any]) -> None:
    t = Table(
        title=f"EC2 image API: Kiln vs moto_server ({out['machine_text']}; "
        f"load at start {out['loadavg_start']})"
    )
    for col in ("measurement", "Kiln", "moto", "Kiln better by"):
        t.add_column(col, justify="left" if col == "measurement" else "right")
    for row in table_rows(out):
        t.add_row(*row)
    console.print(t)
    console.print(f"verdicts: {out['verdicts']}")
    for note in out["notes"]:
        console.print(f"note: {note}")


def markdown(out: dict[str, Any]) -> str:
    lines = ["| measurement | Kiln | moto | Kiln better by |", "|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(r)} |" for r in table_rows(out)]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--sizes",
        default="1000,10000,100000",
        type=lambda s: sorted(int(x) for x in s.split(",")),
        help="total image counts to measure at (ascending)",
    )
    p.add_argument("--calls", type=int, default=200, help="timed DescribeImages calls per size")
    p.add_argument(
        "--describe-budget",
        type=float,
        default=60.0,
        help="seconds of timed DescribeImages per size (>= 20 calls each)",
    )
    p.add_argument("--threads", type=int, default=4, help="RegisterImage client threads")
    p.add_argument(
        "--kiln-api-max",
        type=int,
        default=10_000,
        help="Kiln images registered through the API; the rest via the catalog",
    )
    p.add_argument(
        "--moto-budget", type=float, default=240.0, help="seconds of API loading moto gets in total"
    )
    p.add_argument("--only", choices=["kiln", "moto"], help="run one server only")
    p.add_argument(
        "--kiln-src",
        type=Path,
        default=None,
        help="also run the kiln of this tree (a `git archive` of a commit) as 'kiln-base', "
        "alternating with the others (sizes up to --kiln-api-max only)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    return p.parse_args(argv)


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kiln-bench-api-"))
    targets: list[Target] = []
    out: dict[str, Any] = {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("out", "markdown")
        },
        "register": [],
        "describe": {},
        "notes": [],
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        for start in (start_kiln, start_moto):
            if args.only in (None, start.__name__.removeprefix("start_")):
                targets.append(start(work))
        if args.kiln_src is not None:
            targets.append(start_kiln(work, "kiln-base", args.kiln_src.resolve()))
        for size in args.sizes:
            for target in targets:
                for row in load(target, size, args.threads, args.kiln_api_max, args.moto_budget):
                    out["register"].append({**row, "stage": size})
                    console.log(f"{target.name}: loaded {row}")
            res = describe_latency(targets, args.calls, args.describe_budget)
            out["describe"][str(size)] = res
            console.log(f"DescribeImages at {size}: {res}")
    finally:
        for target in targets:
            target.stop()
        shutil.rmtree(work, ignore_errors=True)
    info = machine_info()
    out["machine"], out["machine_text"] = info, describe(info)
    out["verdicts"] = verdicts(out["describe"])
    for r in out["register"]:
        if r["via"] == "catalog":
            out["notes"].append(
                f"Kiln images {r['from']}–{r['to']} were inserted through the "
                "catalog layer (kiln.catalog.images.register_images), not "
                "through the API; API throughput is measured on the earlier images only."
            )
        if r["server"] == "moto" and not r["complete"]:
            out["notes"].append(
                f"moto's --moto-budget ({args.moto_budget:.0f} s) ran out at "
                f"{r['to']:,} images: its later sizes are measured at that count."
            )
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    out = run(args, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print_table(console, out)
    for size, res in out["describe"].items():
        if "kiln-base" in res and "kiln" in res:
            new, base = res["kiln"], res["kiln-base"]
            console.print(
                f"DescribeImages at {size}: kiln p50/p99 {new['p50_ms']}/{new['p99_ms']} ms, "
                f"kiln-base {base['p50_ms']}/{base['p99_ms']} ms"
            )
    for row in out["register"]:
        if row["server"] in ("kiln", "kiln-base") and row.get("via") == "api":
            console.print(f"RegisterImage {row['server']} {row['from']}–{row['to']}: {row}")
    if args.markdown:
        print(markdown(out))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
