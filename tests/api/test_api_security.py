"""Tenant boundaries and hostile input (issue 8, items 1-7), against live `kiln serve` processes
with unmodified boto3: buckets belong to accounts, host paths only under --import-dir, no URL
import reaches loopback / link-local / private addresses, and oversized input is an EC2 error."""

from __future__ import annotations

import http.server
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_live import KILN, ApiWorld, Creds, LiveKiln
from botocore.exceptions import ClientError
from test_api_snapshots_support import (
    patterned_disk,
    same_bytes,
    wait_export,
    wait_import_snapshot,
)


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def error_of(call) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    return (
        str(err["Error"]["Code"]),
        str(err["Error"]["Message"]),
        int(err["ResponseMetadata"]["HTTPStatusCode"]),
    )


@dataclass(frozen=True)
class Secure:
    """A server with the default import policy, except one import directory."""

    kiln: LiveKiln
    a: Creds
    c: Creds
    allowed: Path
    outside: Path


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    root = tmp_path_factory.mktemp("secure")
    allowed, outside, data = root / "allowed", root / "outside", root / "data"
    for d in (allowed, outside, data / "buckets" / "legacy-bucket"):
        d.mkdir(parents=True)
    # A bucket directory from before buckets had owners: adopted by the operator at start.
    patterned_disk(data / "buckets" / "legacy-bucket" / "old.raw", seed="legacy")
    kiln = LiveKiln(data, None, serve_args=("--import-dir", str(allowed)))
    kiln.start()
    try:
        yield Secure(kiln, kiln.account("a"), kiln.account("c"), allowed, outside)
    finally:
        kiln.stop()
    assert "Traceback" not in kiln.log(), kiln.log()


def import_ok(ec2, **container) -> str:  # type: ignore[no-untyped-def]
    task = ec2.import_snapshot(DiskContainer=container)
    done = wait_import_snapshot(ec2, task["ImportTaskId"])["SnapshotTaskDetail"]
    assert done["Status"] == "completed", done
    return str(done["SnapshotId"])


def register(ec2, snapshot_id: str) -> str:  # type: ignore[no-untyped-def]
    return str(
        ec2.register_image(
            Name=uniq("img"),
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
        )["ImageId"]
    )


# --- 1. buckets belong to accounts ----------------------------------------------------------
def test_bucket_of_another_account_is_refused_like_a_missing_one(secure: Secure) -> None:
    disk = patterned_disk(secure.allowed / "a.raw", seed=uniq("private"))
    a, c = secure.kiln.client(secure.a), secure.kiln.client(secure.c)
    image = register(a, import_ok(a, Url=str(disk), Format="RAW"))
    bucket = uniq("a-exports")
    task = a.export_image(
        ImageId=image,
        DiskImageFormat="RAW",
        S3ExportLocation={"S3Bucket": bucket, "S3Prefix": "exports/"},
    )
    assert wait_export(a, task["ExportImageTaskId"])["Status"] == "completed"
    key = f"exports/{task['ExportImageTaskId']}.raw"
    exported = secure.kiln.data_dir / "buckets" / bucket / key
    assert same_bytes(exported, disk)

    # C names A's export: refused at once, exactly as a bucket that does not exist.
    theirs = error_of(
        lambda: c.import_snapshot(DiskContainer={"UserBucket": {"S3Bucket": bucket, "S3Key": key}})
    )
    missing_bucket = uniq("no-such")
    missing = error_of(
        lambda: c.import_snapshot(
            DiskContainer={"UserBucket": {"S3Bucket": missing_bucket, "S3Key": key}}
        )
    )
    assert theirs[0] == missing[0] == "AccessDenied" and theirs[2] == missing[2] == 403
    assert theirs[1].replace(bucket, "B") == missing[1].replace(missing_bucket, "B")
    image_task = error_of(
        lambda: c.import_image(DiskContainers=[{"UserBucket": {"S3Bucket": bucket, "S3Key": key}}])
    )
    assert image_task[0] == "AccessDenied"
    # C cannot write into A's bucket either; its own export makes a bucket of its own.
    c_image = register(
        c, import_ok(c, Url=str(patterned_disk(secure.allowed / "c.raw", seed=uniq("c"))))
    )
    assert (
        error_of(
            lambda: c.export_image(
                ImageId=c_image, DiskImageFormat="RAW", S3ExportLocation={"S3Bucket": bucket}
            )
        )[0]
        == "AccessDenied"
    )
    assert not any(p.name.startswith("export-ami") for p in exported.parent.parent.iterdir())
    assert c.describe_import_snapshot_tasks()["ImportSnapshotTasks"]  # C's own still listed
    # A reads its own bucket back.
    again = import_ok(a, UserBucket={"S3Bucket": bucket, "S3Key": key})
    assert again.startswith("snap-")

    listed = secure.kiln.kiln("bucket", "ls", "--json", "--data-dir", str(secure.kiln.data_dir))
    assert listed.returncode == 0, listed.stderr
    owners = {b["Bucket"]: b["Owner"] for b in __import__("json").loads(listed.stdout)}
    assert owners[bucket] == secure.a.account_id
    assert owners["legacy-bucket"] == "000000000000"  # adopted by the operator at start-up


def test_legacy_bucket_and_kiln_bucket_create(secure: Secure) -> None:
    a = secure.kiln.client(secure.a)
    code, _, _ = error_of(
        lambda: a.import_snapshot(
            DiskContainer={"UserBucket": {"S3Bucket": "legacy-bucket", "S3Key": "old.raw"}}
        )
    )
    assert code == "AccessDenied"
    name = uniq("made-by-operator")
    made = secure.kiln.kiln(
        "bucket",
        "create",
        name,
        "--account",
        secure.a.account_id,
        "--data-dir",
        str(secure.kiln.data_dir),
    )
    assert made.returncode == 0, made.stderr
    taken = secure.kiln.kiln(
        "bucket",
        "create",
        name,
        "--account",
        secure.c.account_id,
        "--data-dir",
        str(secure.kiln.data_dir),
    )
    assert taken.returncode != 0 and taken.stderr.startswith("error: ")
    assert len(taken.stderr.strip().splitlines()) == 1
    disk = patterned_disk(secure.kiln.data_dir / "buckets" / name / "d.raw", seed=uniq("b"))
    snap = import_ok(a, UserBucket={"S3Bucket": name, "S3Key": "d.raw"})
    assert a.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed"
    assert disk.exists()
    c = secure.kiln.client(secure.c)
    assert (
        error_of(
            lambda: c.import_snapshot(
                DiskContainer={"UserBucket": {"S3Bucket": name, "S3Key": "d.raw"}}
            )
        )[0]
        == "AccessDenied"
    )


# --- 2. host paths only under --import-dir --------------------------------------------------
def test_local_paths_only_under_the_import_dirs(secure: Secure) -> None:
    a = secure.kiln.client(secure.a)
    planted = secure.outside / "planted.raw"
    planted.write_bytes(b"secret!!" * 512)  # 4 KiB, a multiple of 512: importable before
    link = secure.allowed / "link.raw"
    link.symlink_to(planted)
    inside = patterned_disk(secure.allowed / "inside.raw", seed=uniq("inside"))
    assert import_ok(a, Url=f"file://{inside}").startswith("snap-")

    def refused(url: str) -> str:
        code, message, _ = error_of(lambda: a.import_snapshot(DiskContainer={"Url": url}))
        assert code == "InvalidParameterValue", (url, code, message)
        return message.replace(url, "URL")

    gone = refused(str(secure.allowed / "missing.raw"))
    assert "does not exist" in gone
    for url in (
        str(planted),
        f"file://{planted}",
        str(link),
        "/etc/passwd",
        str(secure.kiln.data_dir / "catalog.key"),
        str(secure.allowed / ".." / "outside" / "planted.raw"),
    ):
        assert refused(url) == gone, url  # the same answer as a missing file
    assert (
        error_of(lambda: a.import_image(DiskContainers=[{"Url": str(planted)}]))[0]
        == "InvalidParameterValue"
    )
    # The operator's CLI keeps any path.
    cli = secure.kiln.kiln(
        "snapshot",
        "import",
        str(planted),
        "--data-dir",
        str(secure.kiln.data_dir),
        "--account",
        secure.a.account_id,
        "--json",
    )
    assert cli.returncode == 0, cli.stderr


# --- 3. no SSRF -----------------------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, _Recorder, Path]]:
    """An HTTP server on 127.0.0.1 serving a disk, recording every request it gets."""
    disk = patterned_disk(tmp_path / "web.raw", seed=uniq("web"))
    rec = _Recorder()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            rec.paths.append(self.path)
            data = disk.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", rec, disk
    finally:
        server.shutdown()
        server.server_close()


def test_url_imports_refuse_internal_addresses(
    secure: Secure, web: tuple[str, _Recorder, Path]
) -> None:
    base, rec, _ = web
    port = base.rsplit(":", 1)[1]
    a = secure.kiln.client(secure.a)
    for url in (
        f"{base}/disk.raw",
        f"http://localhost:{port}/disk.raw",
        f"http://127.1.2.3:{port}/x",
        f"http://[::1]:{port}/x",
        f"http://[::ffff:127.0.0.1]:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        f"https://127.0.0.1:{port}/x",
    ):
        code, message, _ = error_of(lambda u=url: a.import_snapshot(DiskContainer={"Url": u}))
        assert code == "InvalidParameterValue", (url, message)
        assert "not reachable for imports" in message, (url, message)
    assert (
        error_of(lambda: a.import_image(DiskContainers=[{"Url": f"{base}/d"}]))[0]
        == "InvalidParameterValue"
    )
    assert rec.paths == []  # not one request reached the internal server


def test_redirects_and_size_are_checked_on_every_download(
    tmp_path: Path, web: tuple[str, _Recorder, Path]
) -> None:
    """The operator allowed 127.0.0.2 only: a redirect from there to 127.0.0.1 is refused, and a
    download over --import-max-bytes fails the task."""
    base, rec, disk = web

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/small":
                data = b"\x01" * 4096
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if self.path == "/big-unsized":  # no Content-Length: counted while streaming
                self.send_response(200)
                self.end_headers()
                for _ in range(4):
                    self.wfile.write(b"\x02" * (1 << 20))
                return
            self.send_response(302)
            self.send_header("Location", f"{base}/disk.raw")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    outer = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Redirect)
    threading.Thread(target=outer.serve_forever, daemon=True).start()
    kiln = LiveKiln(
        tmp_path / "data",
        None,
        serve_args=(
            "--import-allow-net",
            "127.0.0.2/32",
            "--import-max-bytes",
            str(2 * 1024 * 1024),
        ),
    )
    (tmp_path / "data").mkdir()
    kiln.start()
    try:
        ec2 = kiln.client(kiln.account("a"))
        here = f"http://127.0.0.2:{outer.server_address[1]}"
        assert import_ok(ec2, Url=f"{here}/small", Format="RAW").startswith("snap-")
        for path, why in (
            ("/to-internal", "not reachable for imports"),
            ("/big-unsized", "larger than the import limit"),
        ):
            task = ec2.import_snapshot(DiskContainer={"Url": f"{here}{path}", "Format": "RAW"})
            done = wait_import_snapshot(ec2, task["ImportTaskId"])["SnapshotTaskDetail"]
            assert done["Status"] == "deleted", done
            assert why in done["StatusMessage"], done
        assert rec.paths == [] and disk.exists()
        code, _, _ = error_of(lambda: ec2.import_snapshot(DiskContainer={"Url": f"{base}/d"}))
        assert code == "InvalidParameterValue"  # 127.0.0.1 itself is still closed
    finally:
        kiln.stop()
        outer.shutdown()
        outer.server_close()
    assert "Traceback" not in kiln.log()


def test_serve_refuses_a_bad_allowed_network(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            *KILN,
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
            "--import-allow-net",
            "not-a-net",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and res.stderr.startswith("error: "), res.stderr
    assert "not-a-net" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# --- 4-7. what was an HTTP 500 or silently accepted -----------------------------------------
def test_oversized_values_are_ec2_errors(api: ApiWorld, tmp_path: Path) -> None:
    ec2 = api.kiln.client(api.owner)
    disk = patterned_disk(tmp_path / "d.raw", seed=uniq("bounds"))
    snap = import_ok(ec2, Url=str(disk))
    code, message, status = error_of(
        lambda: ec2.register_image(
            Name=uniq("big"),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "EbsCardIndex": 10**30}}
            ],
        )
    )
    assert (code, status) == ("InvalidParameterValue", 400) and "EbsCardIndex" in message
    assert (
        error_of(lambda: ec2.import_snapshot(DiskContainer={"Url": "/" + "a" * 5000}))[0]
        == "InvalidParameterValue"
    )
    assert (
        error_of(lambda: ec2.import_snapshot(DiskContainer={"Url": "/" + "a" * 300}))[0]
        == "InvalidParameterValue"
    )  # one path component too long for the filesystem
    image = register(ec2, snap)
    for prefix in ("p" * 5000, "p" * 100_000, "x/" + "p" * 300 + "/"):
        assert (
            error_of(
                lambda p=prefix: ec2.export_image(
                    ImageId=image,
                    DiskImageFormat="RAW",
                    S3ExportLocation={"S3Bucket": uniq("prefix"), "S3Prefix": p},
                )
            )[0]
            == "InvalidParameterValue"
        )
    code, message, _ = error_of(
        lambda: ec2.import_image(Description="d" * 100_000, DiskContainers=[{"Url": str(disk)}])
    )
    assert code == "InvalidParameterValue" and "Description" in message
    assert not [
        t
        for t in ec2.describe_import_image_tasks()["ImportImageTasks"]
        if len(t.get("Description") or "") > 255
    ]


def test_filter_limits(api: ApiWorld) -> None:
    ec2 = api.kiln.client(api.owner)
    many = [{"Name": "tag:k", "Values": [f"v{i}"]} for i in range(10_000)]
    wide = [{"Name": "name", "Values": [f"n{i}*" for i in range(10_000)]}]
    for call in (ec2.describe_images, ec2.describe_snapshots, ec2.describe_tags):
        for filters in (many, wide):
            code, _, status = error_of(lambda c=call, f=filters: c(Filters=f))
            assert (code, status) == ("FilterLimitExceeded", 400)
    # EC2's own limits are served: 200 filters, 200 values each (wildcards included).
    full = [
        {"Name": "tag:k" if i % 2 else "description", "Values": [f"v{i}-{j}*" for j in range(200)]}
        for i in range(200)
    ]
    assert ec2.describe_images(Owners=["self"], Filters=full)["Images"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"], Filters=full)["Snapshots"] == []
    tag_filters = [
        {"Name": "value" if i % 2 else "key", "Values": [f"v{i}-{j}*" for j in range(200)]}
        for i in range(200)
    ]
    assert ec2.describe_tags(Filters=tag_filters)["Tags"] == []
