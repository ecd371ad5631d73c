"""Jobs: long operations (import, export, copy) recorded so they survive a restart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.catalog import models
from kiln.catalog.records import JobRecord, utc_now

#: States a job never leaves.
FINAL_STATES = frozenset({"completed", "failed", "cancelled", "deleted"})


def _job(r: models.Job) -> JobRecord:
    return JobRecord(
        r.job_id,
        r.kind,
        r.region,
        r.account_id,
        r.state,
        r.progress,
        dict(r.params),
        r.created,
        r.updated,
        r.status_message,
        dict(r.result) if r.result is not None else None,
    )


def create_job(
    tx: Session,
    job_id: str,
    kind: str,
    region: str,
    account_id: str,
    params: dict[str, Any],
    state: str = "pending",
    status_message: str | None = None,
) -> JobRecord:
    now = utc_now()
    row = models.Job(
        job_id=job_id,
        kind=kind,
        region=region,
        account_id=account_id,
        state=state,
        progress=0,
        status_message=status_message,
        params=params,
        result=None,
        created=now,
        updated=now,
    )
    tx.add(row)
    tx.flush()
    return _job(row)


def get_job(tx: Session, job_id: str) -> JobRecord | None:
    row = tx.get(models.Job, job_id)
    return _job(row) if row else None


def update_job(
    tx: Session,
    job_id: str,
    *,
    state: str | None = None,
    progress: int | None = None,
    status_message: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    row = tx.get(models.Job, job_id)
    if row is None:
        raise KeyError(job_id)
    if state is not None:
        row.state = state
    if progress is not None:
        row.progress = progress
    if status_message is not None:
        row.status_message = status_message
    if result is not None:
        row.result = result
    row.updated = utc_now()
    tx.flush()


def list_jobs(
    tx: Session, account_id: str, region: str, kinds: Sequence[str], job_ids: Sequence[str] = ()
) -> list[JobRecord]:
    j = models.Job
    q = select(j).where(j.account_id == account_id, j.region == region, j.kind.in_(kinds))
    if job_ids:
        q = q.where(j.job_id.in_(job_ids))
    return [_job(r) for r in tx.scalars(q.order_by(j.created, j.job_id))]


def unfinished_jobs(tx: Session) -> list[JobRecord]:
    j = models.Job
    return [
        _job(r)
        for r in tx.scalars(select(j).where(j.state.not_in(FINAL_STATES)).order_by(j.created))
    ]


def jobs_of_kind(tx: Session, kind: str) -> list[JobRecord]:
    """Every job of ``kind`` in every account and region, oldest first (maintenance only)."""
    j = models.Job
    return [_job(r) for r in tx.scalars(select(j).where(j.kind == kind).order_by(j.created))]
