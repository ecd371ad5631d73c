"""Import jobs across a killed `kiln serve`, and CancelImportTask.

Downloads come from a test HTTP server that stops half-way through each response until the
test opens its gate, so "mid-import" is a state the test controls, not a race.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_live import ApiWorld, LiveKiln
from botocore.exceptions import ClientError
from test_api_snapshots_support import (
    MIB,
    disk_server,
    export_snapshot_cli,
    patterned_disk,
    poll,
    same_bytes,
    wait_import_snapshot,
)


def _task(ec2, task_id: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"][0][
        "SnapshotTaskDetail"
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    admin = os.environ.get("KILN_TEST_PG_URL")
    if not admin:
        pytest.skip("KILN_TEST_PG_URL unset: PostgreSQL not started (run scripts/test)")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin)
    name = f"kiln_restart_{secrets.token_hex(6)}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_import_jobs_survive_a_killed_server(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    kiln = LiveKiln(data, database_url)
    kiln.start()
    try:
        creds = kiln.account("restart")
        a = patterned_disk(tmp_path / "a.raw", size=24 * MIB, seed="restart-a")
        b = patterned_disk(tmp_path / "b.raw", size=16 * MIB, seed="restart-b")
        c = patterned_disk(tmp_path / "c.raw", size=4 * MIB, seed="restart-c")
        with disk_server({"a.raw": a, "b.raw": b}, gated=True) as (base, gate):
            ec2 = kiln.client(creds)
            ta = ec2.import_snapshot(DiskContainer={"Url": f"{base}/a.raw"})["ImportTaskId"]
            tb = ec2.import_snapshot(DiskContainer={"Url": f"{base}/b.raw"})["ImportTaskId"]
            # Both workers are now stuck half-way through a download...
            poll(
                lambda: [_task(ec2, t)["StatusMessage"] for t in (ta, tb)],
                lambda msgs: msgs == ["downloading", "downloading"],
            )
            # ...so this one waits in the queue.
            tc = ec2.import_snapshot(DiskContainer={"Url": str(c)})["ImportTaskId"]
            assert _task(ec2, tc)["Status"] == "active"
            assert kiln.proc is not None
            kiln.proc.kill()  # kill -9: no shutdown, jobs left active / pending
            kiln.proc.wait()
            c.unlink()  # the queued task's input is gone when the server returns
            gate.open.set()
            kiln.start()
            ec2 = kiln.client(creds)
            done = {t: wait_import_snapshot(ec2, t)["SnapshotTaskDetail"] for t in (ta, tb, tc)}
        assert done[ta]["Status"] == "completed" and done[tb]["Status"] == "completed"
        assert done[tc]["Status"] == "deleted"
        assert done[tc]["StatusMessage"].startswith("ClientError: ")
        assert str(c) in done[tc]["StatusMessage"]
        assert "resumed" in kiln.log()
        for task, disk in ((ta, a), (tb, b)):
            out = export_snapshot_cli(
                kiln, done[task]["SnapshotId"], tmp_path / f"{task}.raw", "us-east-1"
            )
            assert same_bytes(out, disk)
    finally:
        kiln.stop()


def test_cancel_import_task(api: ApiWorld, tmp_path: Path) -> None:
    disk = patterned_disk(tmp_path / "cancel.raw", size=8 * MIB, seed=secrets.token_hex(4))
    ec2 = api.kiln.client(api.owner)
    with disk_server({"cancel.raw": disk}, gated=True) as (base, gate):
        task_id = ec2.import_snapshot(DiskContainer={"Url": f"{base}/cancel.raw"})["ImportTaskId"]
        poll(lambda: gate.halfway.is_set(), bool)
        with pytest.raises(ClientError) as e:
            api.kiln.client(api.stranger).cancel_import_task(ImportTaskId=task_id)
        assert e.value.response["Error"]["Code"] == "InvalidConversionTaskId"
        res = ec2.cancel_import_task(ImportTaskId=task_id, CancelReason="changed my mind")
        assert res["PreviousState"] == "active" and res["State"] == "deleting"
        assert _task(ec2, task_id)["Status"] == "deleting"
        gate.open.set()
        done = wait_import_snapshot(ec2, task_id)["SnapshotTaskDetail"]
    assert done["Status"] == "deleted" and "Canceled" in done["StatusMessage"]
    assert "SnapshotId" not in done
    with pytest.raises(ClientError) as e:
        ec2.cancel_import_task(ImportTaskId=task_id)
    assert e.value.response["Error"]["Code"] == "IncorrectState"
