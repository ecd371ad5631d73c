"""Long operations (import, copy, export) as catalog rows run by a small in-process worker pool.

A rule that starts a long operation writes a ``jobs`` row (state ``pending``) in the same
transaction as the resources it promises (a pending snapshot or image), commits, then calls
:meth:`JobRunner.submit`. A worker thread runs the job's kind (:class:`JobKind`), which reports
progress through its :class:`JobContext` and finishes with one transaction that makes its
resources real and marks the job ``completed``. If it raises, the kind's ``fail`` marks its
resources failed in the same transaction that marks the job ``failed``.

The rules depend on :class:`JobQueue` only (``Services.jobs``); :class:`JobRunner` is the
in-process implementation. A queue shared by several processes (claiming rows in the catalog)
implements the same protocol, and no rule changes. The kinds a queue runs are given to it
(kiln/services/job_kinds.py is the one registry); nothing here knows the rules.

Restart (see docs/jobs.md): :meth:`JobRunner.start` re-queues every job not in a final state.
Kinds are written to be re-run: the store reuses chunks already written, and a step whose
result is already durable (a committed manifest) is skipped. A job whose input is gone fails
with a status message; none stays pending forever.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
import time
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from kiln.catalog import Catalog, Tx
from kiln.catalog import jobs as cat
from kiln.catalog.records import JobRecord
from kiln.errors import KilnError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)

PENDING, ACTIVE, COMPLETED, FAILED, CANCELLED = (
    "pending",
    "active",
    "completed",
    "failed",
    "cancelled",
)
FINAL = cat.FINAL_STATES
PROGRESS_INTERVAL_S = 0.5  # at most two progress writes per second per job
DEFAULT_WORKERS = 2


class JobHost(Protocol):
    """What a queue needs from the wired services it hands to its jobs: the catalog."""

    @property
    def catalog(self) -> Catalog: ...


S = TypeVar("S", bound=JobHost)


class JobCancelled(Exception):
    """Raised inside a running job when CancelImportTask asked for it to stop."""


class JobInterrupted(Exception):
    """Raised inside a running job when the server stops: the job stays active and resumes."""


@dataclass(frozen=True, slots=True)
class JobKind(Generic[S]):
    """How to run one kind of job, and how to mark its resources when it fails.

    ``run`` must be safe to call again after a crash at any point (idempotent steps).
    ``fail(tx, job, message)`` runs in the transaction that marks the job failed/cancelled.
    ``progress(tx, job, percent)``, if given, mirrors progress onto the job's resources.
    ``cleanup(services, job)``, if given, runs after a failure is committed (files, manifests).
    """

    run: Callable[[JobContext[S]], None]
    fail: Callable[[Tx, JobRecord, str], None]
    progress: Callable[[Tx, JobRecord, int], None] | None = None
    cleanup: Callable[[S, JobRecord], None] | None = None


class JobQueue(Protocol[S]):
    """Runs catalog jobs in the background. The rules see only this protocol.

    Contract: a job is a committed ``jobs`` row; ``submit`` only queues its id (idempotent: a
    job already queued or running is not run twice at once). ``start`` re-queues every job not
    in a final state (the resume after a restart) and returns how many it found. ``stop``
    interrupts running jobs at their next progress report; they stay ``active`` and resume on
    the next ``start``. ``cancel`` asks a running job to stop (it ends ``cancelled``);
    ``fail_now`` finishes a job no worker has picked up, False if it is already final.
    """

    @property
    def kinds(self) -> Mapping[str, JobKind[S]]: ...

    @property
    def stopping(self) -> bool: ...

    def start(self, services: S) -> int: ...

    def submit(self, job_id: str) -> None: ...

    def cancel(self, job_id: str) -> None: ...

    def is_cancelled(self, job_id: str) -> bool: ...

    def is_running(self, job_id: str) -> bool: ...

    def fail_now(self, services: S, job_id: str, message: str, state: str = ...) -> bool: ...

    def stop(self, timeout: float = ...) -> None: ...

    def wait_idle(self, timeout: float) -> bool: ...


class QueueHost(JobHost, Protocol):
    """Wired services that carry their job queue (``Services``)."""

    @property
    def jobs(self) -> JobQueue[Any]: ...


D = TypeVar("D", bound="DataclassInstance")


def to_json(value: DataclassInstance) -> dict[str, Any]:
    """A job kind's params or result (a frozen dataclass) as the JSON object the catalog keeps."""
    return dataclasses.asdict(value)


def from_json(cls: type[D], data: Mapping[str, Any]) -> D:
    """The dataclass ``cls`` from a job row's JSON params or result. Keys the class does not
    name are ignored and missing ones take the field's default, so rows written by an older
    Kiln still resume. A field typed as a dataclass, ``X | None``, ``tuple[X, ...]`` or
    ``dict[str, X]`` of one is rebuilt the same way; other values are taken as stored."""
    hints = _field_types(cls)
    return cls(**{k: _from_json_value(hints[k], v) for k, v in data.items() if k in hints})


@functools.cache
def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _from_json_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_json(hint, value)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _from_json_value(inner[0], value) if len(inner) == 1 else value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple(_from_json_value(args[0], v) for v in value)
    if origin is dict and len(args) == 2:
        return {k: _from_json_value(args[1], v) for k, v in value.items()}
    return value


def failure_message(exc: BaseException) -> str:
    """EC2's task StatusMessage for a failure: ``ClientError: …`` or ``ServerError: …``."""
    if isinstance(exc, KilnError):
        side = "ClientError" if exc.code.http_status < 500 else "ServerError"
        return f"{side}: {exc.message}"
    return "ServerError: internal error (see the server log)"


class JobContext(Generic[S]):
    """What a running job sees: its record, the wired services, progress and cancellation."""

    def __init__(self, runner: JobQueue[S], services: S, job: JobRecord) -> None:
        self.runner = runner
        self.services = services
        self.job = job
        self._last_write = 0.0
        self._percent = job.progress

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def check(self) -> None:
        """Raise JobCancelled / JobInterrupted if the job should stop now."""
        if self.runner.is_cancelled(self.job.job_id):
            raise JobCancelled(self.job.job_id)
        if self.runner.stopping:
            raise JobInterrupted(self.job.job_id)

    def report(self, done: int, total: int, lo: int = 0, hi: int = 100) -> None:
        """Progress of one step as bytes ``done`` of ``total``, mapped onto ``lo..hi`` percent."""
        frac = done / total if total > 0 else 1.0
        self.set_progress(lo + int((hi - lo) * min(max(frac, 0.0), 1.0)))

    def reporter(self, lo: int = 0, hi: int = 100) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for the store and kiln.disks."""
        return lambda done, total: self.report(done, total, lo, hi)

    def set_progress(self, percent: int, status_message: str | None = None) -> None:
        """Record progress (throttled; never backwards; capped at 99 until completion)."""
        self.check()
        percent = min(max(percent, self._percent), 99)
        now = time.monotonic()
        if status_message is None and (
            percent == self._percent or now - self._last_write < PROGRESS_INTERVAL_S
        ):
            return
        self._percent = percent
        self._last_write = now
        kind = self.runner.kinds.get(self.job.kind)
        with self.services.catalog.write() as tx:
            cat.update_job(tx, self.job.job_id, progress=percent, status_message=status_message)
            if kind is not None and kind.progress is not None:
                kind.progress(tx, self.job, percent)

    def complete(
        self, tx: Tx, result: Mapping[str, Any] | None = None, status_message: str = ""
    ) -> None:
        """Mark the job completed inside the transaction that makes its results visible."""
        cat.update_job(
            tx,
            self.job.job_id,
            state=COMPLETED,
            progress=100,
            status_message=status_message,
            result=dict(result or {}),
        )


class JobRunner(Generic[S]):
    """The in-process :class:`JobQueue`: a pool of worker threads. Thread-safe."""

    def __init__(self, kinds: Mapping[str, JobKind[S]], workers: int = DEFAULT_WORKERS) -> None:
        self._kinds = dict(kinds)
        self._workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._cancelled: set[str] = set()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._services: S | None = None
        self._stopping = False

    @property
    def kinds(self) -> Mapping[str, JobKind[S]]:
        return self._kinds

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self, services: S) -> int:
        """Resume unfinished jobs and start the workers. Returns how many jobs were resumed."""
        if self._threads:
            return 0
        self._services = services
        self._stopping = False
        with services.catalog.read() as tx:
            unfinished = cat.unfinished_jobs(tx)
        for job in unfinished:
            log.info(
                "resuming job %s (%s, %s, %d%%)", job.job_id, job.kind, job.state, job.progress
            )
            self._queue.put(job.job_id)
        for n in range(self._workers):
            t = threading.Thread(target=self._work, name=f"kiln-job-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return len(unfinished)

    def submit(self, job_id: str) -> None:
        """Queue a job whose row is committed (state pending)."""
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Ask a running job to stop at its next progress report."""
        with self._lock:
            self._cancelled.add(job_id)

    def is_cancelled(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancelled

    def is_running(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._running

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers; running jobs are interrupted at their next progress report and
        stay ``active`` so the next start resumes them."""
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def wait_idle(self, timeout: float) -> bool:
        """True once no job is queued or running (for tests and orderly shutdown)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running or not self._queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    # --- the worker loop ---------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self.stopping:
                return
            with self._lock:
                if job_id in self._running:
                    continue
                self._running.add(job_id)
            try:
                self._run_one(job_id)
            except Exception:  # a bug in the runner itself: keep the worker alive
                log.exception("job %s: runner error", job_id)
            finally:
                with self._idle:
                    self._running.discard(job_id)
                    self._cancelled.discard(job_id)
                    self._idle.notify_all()

    def _run_one(self, job_id: str) -> None:
        services = self._services
        assert services is not None
        with services.catalog.write() as tx:
            job = cat.get_job(tx, job_id)
            if job is None or job.state in FINAL:
                return
            if job.state == PENDING:
                cat.update_job(tx, job_id, state=ACTIVE)
        kind = self.kinds.get(job.kind)
        if kind is None:
            self._finish_failed(services, job, None, f"ServerError: unknown job kind {job.kind}")
            return
        ctx = JobContext(self, services, job)
        started = time.monotonic()
        try:
            ctx.check()
            kind.run(ctx)
        except JobInterrupted:
            log.info("job %s interrupted by shutdown; it resumes on the next start", job_id)
            return
        except JobCancelled:
            log.info("job %s cancelled", job_id)
            self._finish_failed(services, job, kind, "Canceled by user", state=CANCELLED)
            return
        except Exception as exc:
            if not isinstance(exc, KilnError) or exc.code.http_status >= 500:
                log.exception("job %s (%s) failed", job_id, job.kind)
            else:
                log.info("job %s (%s) failed: %s", job_id, job.kind, exc.message)
            self._finish_failed(services, job, kind, failure_message(exc))
            return
        with services.catalog.write() as tx:
            now = cat.get_job(tx, job_id)
            if now is not None and now.state not in FINAL:
                cat.update_job(tx, job_id, state=COMPLETED, progress=100, status_message="")
        log.info("job %s (%s) completed in %.2fs", job_id, job.kind, time.monotonic() - started)

    def fail_now(self, services: S, job_id: str, message: str, state: str = CANCELLED) -> bool:
        """Finish a job that is not running (still queued) without running it. False if it is
        already final. Used by CancelImportTask for a task no worker has picked up yet."""
        with services.catalog.write() as tx:
            job = cat.get_job(tx, job_id)
            if job is None or job.state in FINAL:
                return False
            cat.update_job(tx, job_id, state=state, status_message=message)
            kind = self.kinds.get(job.kind)
            if kind is not None:
                kind.fail(tx, job, message)
        _cleanup(services, job, kind)
        return True

    def _finish_failed(
        self,
        services: S,
        job: JobRecord,
        kind: JobKind[S] | None,
        message: str,
        state: str = FAILED,
    ) -> None:
        with services.catalog.write() as tx:
            cat.update_job(tx, job.job_id, state=state, status_message=message)
            if kind is not None:
                kind.fail(tx, job, message)
        _cleanup(services, job, kind)


def _cleanup(services: S, job: JobRecord, kind: JobKind[S] | None) -> None:
    if kind is None or kind.cleanup is None:
        return
    try:
        kind.cleanup(services, job)
    except Exception:
        log.exception("job %s: cleanup after failure failed", job.job_id)


def fail_job_now(services: QueueHost, job_id: str, message: str, state: str = CANCELLED) -> bool:
    """Finish a queued job of ``services.jobs`` without running it (see JobQueue.fail_now)."""
    return services.jobs.fail_now(services, job_id, message, state)
