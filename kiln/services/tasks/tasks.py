"""The task views of import and export jobs: DescribeImportSnapshotTasks,
DescribeImportImageTasks, DescribeExportImageTasks and CancelImportTask.

A task's EC2 Status is derived from its job: ``active`` while pending or running (StatusMessage
``pending`` / ``downloading`` / ``converting`` / ``preparing ami``), ``completed``, and
``deleted`` once it failed (StatusMessage ``ClientError: …`` or ``ServerError: …``) or was
cancelled, as EC2 reports failed and cancelled import tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kiln import errors
from kiln.catalog import jobs as cat_jobs
from kiln.catalog import tags as cat_tags
from kiln.catalog.records import Filter, JobRecord, TagRecord
from kiln.catalog.wildcard import matches_text
from kiln.errors import KilnError
from kiln.runtime.jobs import CANCELLED, COMPLETED, FAILED, fail_job_now
from kiln.services.context import Caller, Services
from kiln.services.validate import (
    check_filters,
    check_max_results,
    decode_token,
    dry_run,
    encode_token,
    id_prefix,
)

log = logging.getLogger(__name__)

KIND_OF_PREFIX = {
    "import-snap": "import-snapshot",
    "import-ami": "import-image",
    "export-ami": "export-image",
}
TASK_FILTERS = {"task-state": "str"}


@dataclass(frozen=True, slots=True)
class TaskView:
    """One task as EC2 shows it; ``params``/``result`` carry the kind-specific details."""

    task_id: str
    kind: str
    status: str
    status_message: str | None
    progress: str | None
    params: dict[str, Any]
    result: dict[str, Any]
    tags: tuple[TagRecord, ...]


def status_of(job: JobRecord) -> str:
    if job.state == COMPLETED:
        return "completed"
    if job.state in (FAILED, CANCELLED, "deleted"):
        return "deleted"
    return "deleting" if job.status_message == "deleting" else "active"


def view(job: JobRecord, tags: tuple[TagRecord, ...] = ()) -> TaskView:
    status = status_of(job)
    message = job.status_message or ("pending" if status == "active" else None)
    return TaskView(
        task_id=job.job_id,
        kind=job.kind,
        status=status,
        status_message=message or None,
        progress=str(job.progress) if status in ("active", "deleting") else None,
        params=job.params,
        result=job.result or {},
        tags=tags,
    )


@dataclass(frozen=True, slots=True)
class DescribeTasksResult:
    tasks: tuple[TaskView, ...]
    next_token: str | None


def describe_tasks(
    services: Services,
    caller: Caller,
    kind: str,
    task_ids: tuple[str, ...],
    filters: tuple[Filter, ...],
    max_results: int | None,
    next_token: str | None,
    dry_run_flag: bool,
) -> DescribeTasksResult:
    """The caller's tasks of ``kind`` in its region, oldest first, one page."""
    for tid in task_ids:
        if KIND_OF_PREFIX.get(id_prefix(tid) or "") != kind:
            raise KilnError(
                errors.InvalidConversionTaskIdMalformed,
                f"The import task ID '{tid}' is malformed"
                if kind != "export-image"
                else f"The export task ID '{tid}' is malformed",
            )
    checked = check_filters(filters, TASK_FILTERS, tag_filters=False)
    check_max_results(max_results, 1, 1000)
    dry_run(dry_run_flag)
    fingerprint = [
        kind,
        caller.account_id,
        caller.region,
        task_ids,
        [(f.name, f.values) for f in checked],
    ]
    after = decode_token(next_token, fingerprint)
    with services.catalog.read() as tx:
        jobs = cat_jobs.list_jobs(tx, caller.account_id, caller.region, [kind], task_ids)
        missing = [t for t in task_ids if t not in {j.job_id for j in jobs}]
        if missing:
            code = (
                errors.InvalidExportTaskIDNotFound
                if kind == "export-image"
                else errors.InvalidConversionTaskIdNotFound
            )
            raise KilnError(code, f"The task ID '{', '.join(missing)}' does not exist")
        views = [view(j) for j in jobs]
        for f in checked:
            views = [v for v in views if any(matches_text(v.status, x) for x in f.values)]
        if after is not None:
            ids = [v.task_id for v in views]
            start = ids.index(str(after)) + 1 if str(after) in ids else len(ids)
            views = views[start:]
        token = None
        if max_results and len(views) > max_results:
            views = views[:max_results]
            token = encode_token(views[-1].task_id, fingerprint)
        tags = cat_tags.tags_for(tx, [v.task_id for v in views], caller.account_id)
    out = tuple(TaskView(**{**_as_dict(v), "tags": tuple(tags.get(v.task_id, ()))}) for v in views)
    return DescribeTasksResult(out, token)


@dataclass(frozen=True, slots=True)
class DescribeTasksRequest:
    """The parameters the three Describe…Tasks actions share."""

    task_ids: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    max_results: int | None = None
    next_token: str | None = None
    dry_run: bool = False


def _describe(
    services: Services, caller: Caller, kind: str, req: DescribeTasksRequest
) -> DescribeTasksResult:
    return describe_tasks(
        services,
        caller,
        kind,
        req.task_ids,
        req.filters,
        req.max_results,
        req.next_token,
        req.dry_run,
    )


def describe_import_snapshot_tasks(
    services: Services, caller: Caller, req: DescribeTasksRequest
) -> DescribeTasksResult:
    return _describe(services, caller, "import-snapshot", req)


def describe_import_image_tasks(
    services: Services, caller: Caller, req: DescribeTasksRequest
) -> DescribeTasksResult:
    return _describe(services, caller, "import-image", req)


def describe_export_image_tasks(
    services: Services, caller: Caller, req: DescribeTasksRequest
) -> DescribeTasksResult:
    return _describe(services, caller, "export-image", req)


def get_task(services: Services, caller: Caller, task_id: str) -> TaskView:
    """One of the caller's tasks, with its tags (just after creating it)."""
    with services.catalog.read() as tx:
        job = cat_jobs.get_job(tx, task_id)
        if job is None or job.account_id != caller.account_id:
            raise KilnError(
                errors.InvalidConversionTaskIdNotFound, f"The task ID '{task_id}' does not exist"
            )
        tags = cat_tags.tags_for(tx, [task_id], caller.account_id).get(task_id, [])
    return view(job, tuple(tags))


def _as_dict(v: TaskView) -> dict[str, Any]:
    return {f: getattr(v, f) for f in TaskView.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class CancelImportTaskResult:
    task_id: str
    previous_state: str
    state: str


def cancel_import_task(
    services: Services, caller: Caller, task_id: str | None, reason: str | None, dry_run_flag: bool
) -> CancelImportTaskResult:
    """Stop an active import task: a queued one at once, a running one at its next progress
    report (its Status reads ``deleting`` until the worker has stopped)."""
    if not task_id:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter ImportTaskId"
        )
    if KIND_OF_PREFIX.get(id_prefix(task_id) or "") not in ("import-snapshot", "import-image"):
        raise KilnError(
            errors.InvalidConversionTaskIdMalformed, f"The import task ID '{task_id}' is malformed"
        )
    with services.catalog.read() as tx:
        job = cat_jobs.get_job(tx, task_id)
    if job is None or job.account_id != caller.account_id or job.region != caller.region:
        raise KilnError(
            errors.InvalidConversionTaskIdNotFound, f"The task ID '{task_id}' does not exist"
        )
    dry_run(dry_run_flag)
    previous = status_of(job)
    if previous != "active":
        raise KilnError(
            errors.IncorrectState,
            f"The import task {task_id} is {previous} and cannot be cancelled.",
        )
    message = "Canceled by user" + (f": {reason}" if reason else "")
    services.jobs.cancel(task_id)
    if not services.jobs.is_running(task_id):
        fail_job_now(services, task_id, message)
    else:
        with services.catalog.write() as tx:
            cat_jobs.update_job(tx, task_id, status_message="deleting")
    log.info("cancel requested for %s", task_id)
    return CancelImportTaskResult(task_id, previous, "deleting")
