"""JobRunner over a real catalog (SQLite and PostgreSQL): run, fail, cancel, stop, resume.

The job kinds here are small test kinds registered with the runner (the runner is what is
tested), and the jobs see a minimal host, not the rules' Services; the real kinds are exercised
end to end in tests/api.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiln import errors
from kiln.catalog import Catalog, Tx
from kiln.catalog import jobs as cat_jobs
from kiln.catalog.records import JobRecord
from kiln.errors import KilnError
from kiln.runtime.jobs import JobContext, JobKind, JobRunner, fail_job_now

ACCOUNT = "123456789012"
WAIT_S = 60.0  # bounds a hang; no test asserts on time


class Recorder:
    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def fail(self, tx: Tx, job: JobRecord, message: str) -> None:
        self.failed.append((job.job_id, message))


def kinds(rec: Recorder) -> dict[str, JobKind]:
    def ok(ctx: JobContext) -> None:
        for n in range(1, 5):
            ctx.report(n, 4)
        with ctx.services.catalog.write() as tx:
            ctx.complete(tx, {"echo": ctx.params["value"]})

    def bad_input(ctx: JobContext) -> None:
        raise KilnError(errors.InvalidParameterValue, f"no such disk {ctx.params['value']}")

    def crash(ctx: JobContext) -> None:
        raise RuntimeError("bug")

    def blocked(ctx: JobContext) -> None:
        rec.started.set()
        while not rec.gate.wait(0.01):
            ctx.set_progress(10)  # progress reports are where cancel / stop take effect
        ctx.set_progress(50)

    return {
        "ok": JobKind(ok, rec.fail),
        "bad": JobKind(bad_input, rec.fail),
        "crash": JobKind(crash, rec.fail),
        "blocked": JobKind(blocked, rec.fail),
    }


@dataclass(frozen=True, slots=True)
class Host:
    """All a job queue needs from the services it hands to its jobs (runtime.jobs.QueueHost)."""

    catalog: Catalog
    jobs: JobRunner[Host]


def services(catalog: Catalog, runner: JobRunner[Host], tmp_path: Path) -> Host:
    return Host(catalog=catalog, jobs=runner)


def add_job(catalog: Catalog, job_id: str, kind: str, state: str = "pending") -> None:
    with catalog.write() as tx:
        cat_jobs.create_job(tx, job_id, kind, "us-east-1", ACCOUNT, {"value": job_id}, state=state)


def job(catalog: Catalog, job_id: str) -> JobRecord:
    with catalog.read() as tx:
        found = cat_jobs.get_job(tx, job_id)
    assert found is not None
    return found


def test_jobs_run_fail_and_resume_at_start(catalog: Catalog, tmp_path: Path) -> None:
    rec = Recorder()
    add_job(catalog, "job-pending", "ok")
    add_job(catalog, "job-active", "ok", state="active")  # left running by a killed server
    add_job(catalog, "job-unknown", "no-such-kind")
    runner = JobRunner(kinds(rec))
    assert runner.start(services(catalog, runner, tmp_path)) == 3
    add_job(catalog, "job-bad", "bad")
    add_job(catalog, "job-crash", "crash")
    runner.submit("job-bad")
    runner.submit("job-crash")
    try:
        assert runner.wait_idle(WAIT_S)
    finally:
        runner.stop()
    for job_id in ("job-pending", "job-active"):
        done = job(catalog, job_id)
        assert (done.state, done.progress, done.result) == ("completed", 100, {"echo": job_id})
    assert job(catalog, "job-unknown").state == "failed"
    assert "unknown job kind" in (job(catalog, "job-unknown").status_message or "")
    bad = job(catalog, "job-bad")
    assert bad.state == "failed" and bad.status_message == "ClientError: no such disk job-bad"
    crash = job(catalog, "job-crash")
    assert crash.state == "failed" and (crash.status_message or "").startswith("ServerError: ")
    assert sorted(j for j, _ in rec.failed) == ["job-bad", "job-crash"]


def test_stop_leaves_a_running_job_active_and_the_next_start_finishes_it(
    catalog: Catalog, tmp_path: Path
) -> None:
    rec = Recorder()
    runner = JobRunner(kinds(rec))
    runner.start(services(catalog, runner, tmp_path))
    add_job(catalog, "job-long", "blocked")
    runner.submit("job-long")
    assert rec.started.wait(WAIT_S)
    runner.stop()
    interrupted = job(catalog, "job-long")
    assert interrupted.state == "active" and rec.failed == []
    rec.gate.set()
    again = JobRunner(kinds(rec))
    assert again.start(services(catalog, again, tmp_path)) == 1
    try:
        assert again.wait_idle(WAIT_S)
    finally:
        again.stop()
    assert job(catalog, "job-long").state == "completed"


def test_cancel_a_running_and_a_queued_job(catalog: Catalog, tmp_path: Path) -> None:
    rec = Recorder()
    runner = JobRunner(kinds(rec), workers=1)
    svc = services(catalog, runner, tmp_path)
    runner.start(svc)
    add_job(catalog, "job-running", "blocked")
    add_job(catalog, "job-queued", "ok")
    runner.submit("job-running")
    runner.submit("job-queued")
    try:
        assert rec.started.wait(WAIT_S)
        assert fail_job_now(svc, "job-queued", "Canceled by user")  # no worker has it yet
        runner.cancel("job-running")
        assert runner.wait_idle(WAIT_S)
    finally:
        runner.stop()
    for job_id in ("job-running", "job-queued"):
        assert job(catalog, job_id).state == "cancelled"
    assert {j for j, _ in rec.failed} == {"job-running", "job-queued"}
    assert not fail_job_now(svc, "job-queued", "again")  # already final


@pytest.mark.parametrize("done,total,expected", [(0, 10, 0), (5, 10, 50), (10, 10, 99), (3, 0, 99)])
def test_progress_is_mapped_capped_and_never_backwards(
    catalog: Catalog, tmp_path: Path, done: int, total: int, expected: int
) -> None:
    runner: JobRunner[Host] = JobRunner({})
    add_job(catalog, "job-p", "ok", state="active")
    ctx = JobContext(runner, services(catalog, runner, tmp_path), job(catalog, "job-p"))
    ctx.set_progress(0, "converting")
    ctx.report(done, total)
    ctx._last_write = 0.0  # let the next report write at once
    ctx.report(done, total)
    assert job(catalog, "job-p").progress == expected
    ctx._last_write = 0.0
    ctx.report(0, 10)
    assert job(catalog, "job-p").progress == expected
