"""Background fleet jobs: `POST /api/jobs` runs preview, up, refresh or drift as the CLI does.

Jobs run one at a time, in order, on one worker thread: a fleet run holds the fleet lease and
spends the one Cloudflare API budget, exactly like a CLI run, so two runs at once would only fail
on the lease or halve each other's budget. A job whose tenants overlap a queued or running job is
refused (409) rather than queued behind it. Cancelling a queued job drops it; cancelling a running
one stops it from starting further stacks, while a stack already in an engine operation finishes
(interrupting Pulumi mid-update leaves pending operations that need a `refresh`).

Jobs live in memory: a restart forgets finished jobs (the audit log keeps what they did) and a
killed server's running job leaves what a killed CLI leaves, which `recover` reports.

A job's `engine` is the CLI's `--engine`. With `temporal` the job starts one rollout workflow on the
cluster and follows it: the same progress events feed the same view, so a job looks alike on both
engines (per-stack state, wave and verdict, the rollout's lines, the report). Such a job is refused
before it is accepted when the cluster's frontend does not answer. Cancelling it sends the
rollout's cancel signal; a server stopped meanwhile leaves the rollout running in the cluster
(`temporal workflow describe`, its id is the job's first event line).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from queue import Queue
from typing import Any

from orchestrator.server.errors import JobConflict, JobNotFound
from orchestrator.server.events import EventHub
from orchestrator.server.library import (
    NOTED,
    AuditLog,
    EdgeError,
    FleetReport,
    Library,
    Operation,
    RolloutOptions,
    Sizing,
    drift_options,
    one_line,
    report_line,
    tenant_of,
    tenant_stack,
)
from orchestrator.server.schemas import JobRequest, JobState, JobView, TenantProgress

KEEP_FINISHED = 100
EVENT_LINES = 50
FINAL: frozenset[JobState] = frozenset({"succeeded", "failed", "cancelled"})


def options_for(request: JobRequest, stacks: list[str], sizing: Sizing) -> RolloutOptions:
    """The CLI's options for the same command (`drift` is `refresh --preview-only` classified), with
    `sizing` the request's concurrency and wave size or the ones sized for this node (`Library.sizing`)."""
    op = request.operation
    if op == "preview":
        return RolloutOptions(Operation.PREVIEW, concurrency=sizing.concurrency)
    if op == "refresh":
        return RolloutOptions(Operation.REFRESH, concurrency=sizing.concurrency)
    if op == "drift":
        return drift_options(sizing.concurrency)
    canary = tenant_stack(request.canary) if request.canary else None
    if canary is not None and canary not in stacks:
        raise EdgeError(f"canary {request.canary} is not among the selected tenants")
    return RolloutOptions(
        Operation.UP,
        concurrency=sizing.concurrency,
        wave_size=sizing.wave_size,
        canary=canary,
        continue_on_error=request.continue_on_error,
        force=request.force,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    id: str
    request: JobRequest
    stacks: list[str]
    options: RolloutOptions
    by: str
    audit: AuditLog
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    state: JobState = "queued"
    wave: int | None = None
    error: str | None = None
    report: FleetReport | None = None
    progress: dict[str, TenantProgress] = field(default_factory=dict)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=EVENT_LINES))
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for stack in self.stacks:
            self.progress[stack] = TenantProgress(tenant=tenant_of(stack), state="queued")

    def view(self) -> JobView:
        done = sum(1 for p in self.progress.values() if p.state in ("done", "skipped"))
        return JobView(
            id=self.id,
            operation=self.request.operation,
            engine=self.request.engine,
            state=self.state,
            by=self.by,
            created=self.created,
            started=self.started,
            finished=self.finished,
            total=len(self.stacks),
            done=done,
            wave=self.wave,
            tenants=[self.progress[s] for s in self.stacks],
            events=list(self.events),
            error=self.error,
            report=self.report.as_dict() if self.report else None,
        )


class JobManager:
    """Queue, run, report and cancel jobs; publishes every change to the event hub."""

    def __init__(self, library: Library, hub: EventHub, *, on_finish: Callable[[], None] = lambda: None) -> None:
        self.library = library
        self.hub = hub
        self.on_finish = on_finish
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.RLock()
        self._queue: Queue[Job | None] = Queue()
        self._worker = threading.Thread(target=self._work, name="jobs", daemon=True)
        self._worker.start()

    # -- requests -----------------------------------------------------------------------------

    def submit(self, request: JobRequest, by: str, audit: AuditLog) -> Job:
        stacks = self.library.select(None if request.all else request.tenants)
        sizing = self.library.sizing(request.concurrency, request.wave_size, request.engine)
        options = options_for(request, stacks, sizing)
        self.library.check_engine(request.engine)  # nothing accepted, queued or audited if it fails
        with self._lock:
            busy = self.busy()
            for stack in stacks:
                if stack in busy:
                    other = self._jobs[busy[stack]]
                    what = f"job {other.id} ({other.request.operation}) is {other.state}"
                    raise JobConflict(f"tenant {tenant_of(stack)} is busy: {what}")
            job = Job(uuid.uuid4().hex[:12], request, stacks, options, by, audit)
            self._jobs[job.id] = job
            self._forget_old()
        audit.record(
            stack="fleet",
            operation=f"job {request.operation}",
            result="accepted",
            detail=f"job {job.id}: {len(stacks)} tenants ({', '.join(tenant_of(s) for s in stacks[:10])}"
            + (" …)" if len(stacks) > 10 else ")"),
        )
        self._publish(job)
        self._queue.put(job)
        return job

    def cancel(self, job_id: str, audit: AuditLog) -> Job:
        with self._lock:
            job = self.get(job_id)
            if job.state in FINAL:
                raise JobConflict(f"job {job.id} has already {job.state}; nothing to cancel")
            job.cancel_event.set()
            if job.state == "queued":
                job.state, job.finished = "cancelled", _now()
                for stack, item in job.progress.items():
                    job.progress[stack] = item.model_copy(update={"result": "not-run", "detail": "cancelled"})
            else:
                job.state = "cancelling"
            job.events.append("cancel requested")
        audit.record(stack="fleet", operation=f"job {job.request.operation}", result="cancel", detail=f"job {job.id}")
        self._publish(job)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} (finished jobs are kept until {KEEP_FINISHED} newer ones exist)")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def busy(self) -> dict[str, str]:
        """Stack → id of the queued or running job that holds it."""
        with self._lock:
            return {s: j.id for j in self._jobs.values() if j.state not in FINAL for s in j.stacks}

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._worker.join(timeout)

    # -- running ------------------------------------------------------------------------------

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in FINAL]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]

    def _publish(self, job: Job) -> None:
        self.hub.publish("job", job.view().model_dump(mode="json"))

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.state != "queued":
                continue  # cancelled while queued
            self._run(job)
            self.on_finish()

    def _on_progress(self, job: Job) -> Callable[[str, str | None, str], None]:
        def progress(event: str, stack: str | None, detail: str) -> None:
            with self._lock:
                if stack is not None and stack in job.progress:
                    item = job.progress[stack]
                    if event == "start":
                        job.progress[stack] = item.model_copy(update={"state": "running", "wave": job.wave})
                    elif event in ("done", "skip"):
                        state = "done" if event == "done" else "skipped"
                        result = detail if event == "done" else "unchanged"
                        job.progress[stack] = item.model_copy(
                            update={"state": state, "result": result, "detail": "" if event == "done" else detail}
                        )
                if event == "wave":  # the rollout numbers its waves from 0, the canary, in order
                    job.wave = 0 if job.wave is None else job.wave + 1
                if event in NOTED:
                    who = f"{tenant_of(stack)}: " if stack else ""
                    job.events.append(report_line(f"{event} {who}{detail}", 300))
            self._publish(job)

        return progress

    def _run(self, job: Job) -> None:
        with self._lock:
            job.state, job.started = "running", _now()
        self._publish(job)
        try:
            report = self.library.run_fleet(
                job.stacks,
                job.options,
                audit=job.audit,
                progress=self._on_progress(job),
                cancelled=job.cancel_event.is_set,
                engine=job.request.engine,
            )
        except EdgeError as exc:
            self._finish(job, None, report_line(exc))
        except Exception as exc:  # a bug must not kill the worker thread and every later job
            self._finish(job, None, report_line(f"unexpected {type(exc).__name__}: {exc}"))
        else:
            self._finish(job, report, None)

    def _finish(self, job: Job, report: FleetReport | None, error: str | None) -> None:
        with self._lock:
            job.report, job.error, job.finished = report, error, _now()
            if report is not None:
                for result in report.results:
                    job.progress[result.stack] = TenantProgress(
                        tenant=result.tenant,
                        state="done",
                        wave=result.wave,
                        result=result.result.value,
                        detail=one_line(result.detail, 300),
                    )
            if job.cancel_event.is_set():
                job.state = "cancelled"
            elif report is not None and report.ok:
                job.state = "succeeded"
            else:
                job.state = "failed"
        self._publish(job)


def job_json(job: Job) -> dict[str, Any]:
    return job.view().model_dump(mode="json")
