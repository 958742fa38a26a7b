"""Job use cases: dispatch (one or many in one transaction), cancel, retry, forget, comment."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from application.commands import CommandRegistry, ParsedCommand
from application.event_log import ChronicleEvents
from application.idempotency import DEFAULT_RETENTION, Created, IdempotentCreation
from application.ports import Clock
from application.saving import change, collected, save_groups, saved
from application.views.jobs import FailedJobFilter, FailedJobIds, JobComment
from domain.job import Job, JobStatus
from domain.shared import DEFAULT_TENANT, NotFoundError, ValidationError, require_utc

T = TypeVar("T")

MAX_DELAY = timedelta(days=365)
#: How far in the past `not_before` may lie: a moment already past means "now", and a little
#: leeway covers clocks that differ; a moment further back is a mistake, not a wish.
MAX_PAST = timedelta(days=1)
MAX_RETRY_PAGE = 5_000


@dataclass(frozen=True)
class DispatchRequest:
    """What a caller asks to run: a command line, or a command with arguments and options."""

    command: str | None = None
    arguments: list[Any] | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    command_line: str | None = None
    queue: str = "default"
    delay_seconds: float = 0.0
    not_before: datetime | None = None
    max_attempts: int = 3
    timeout_seconds: float | None = None
    backoff_seconds: float | None = None
    tenant: str = DEFAULT_TENANT
    requested_by: str = "system"
    batch_id: str | None = None
    schedule_id: str | None = None
    job_id: UUID | None = field(default=None)


@dataclass(frozen=True)
class BulkRetry:
    """What a bulk retry did; `skipped` jobs had stopped being failed when their turn came."""

    retried: int
    skipped: int


class JobService:
    """Writes Job aggregates; the outbox relay turns their events into broker messages."""

    def __init__(
        self,
        events: ChronicleEvents,
        registry: CommandRegistry,
        clock: Clock,
        *,
        default_backoff_seconds: float = 1.0,
        failed_jobs: FailedJobIds | None = None,
        idempotency_retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._events = events
        self.idempotent = IdempotentCreation(events, clock, retention=idempotency_retention)
        self._registry = registry
        self._clock = clock
        self._default_backoff = default_backoff_seconds
        self._failed_jobs = failed_jobs

    def parse(self, request: DispatchRequest) -> ParsedCommand:
        """Validate the command against its registered signature."""
        if request.command_line is not None:
            if request.command is not None or request.arguments or request.options:
                raise ValidationError(
                    "give either command_line or command with arguments/options, not both",
                    field="command_line",
                )
            return self._registry.parse(request.command_line)
        if not request.command:
            raise ValidationError("a command or a command_line is required", field="command")
        return self._registry.validate(request.command, request.arguments, request.options)

    def build(self, request: DispatchRequest, now: datetime) -> Job:
        parsed = self.parse(request)
        # Checked as a float first: timedelta() overflows long before a float does.
        limit = MAX_DELAY.total_seconds()
        if not (math.isfinite(request.delay_seconds) and 0 <= request.delay_seconds <= limit):
            raise ValidationError(
                f"delay_seconds must be between 0 and {limit:.0f} (365 days)",
                field="delay_seconds",
            )
        not_before = request.not_before
        if not_before is not None:
            not_before = require_utc(not_before, "not_before")
            if not now - MAX_PAST <= not_before <= now + MAX_DELAY:
                raise ValidationError(
                    "not_before is out of range: at most 365 days from now (as delay_seconds) "
                    "and at most 1 day in the past",
                    field="not_before",
                )
        if request.delay_seconds:
            if not_before is not None:
                raise ValidationError(
                    "give delay_seconds or not_before, not both", field="delay_seconds"
                )
            not_before = now + timedelta(seconds=request.delay_seconds)
        return Job.dispatch(
            job_id=request.job_id or uuid4(),
            command=parsed.name,
            command_line=parsed.command_line(),
            arguments=parsed.arguments,
            options=parsed.options,
            at=now,
            queue=request.queue,
            tenant=request.tenant,
            max_attempts=request.max_attempts,
            timeout_seconds=request.timeout_seconds,
            backoff_seconds=(
                self._default_backoff
                if request.backoff_seconds is None
                else request.backoff_seconds
            ),
            not_before=not_before,
            requested_by=request.requested_by,
            batch_id=request.batch_id,
            schedule_id=request.schedule_id,
        )

    def dispatch(self, request: DispatchRequest) -> UUID:
        """Record one job as dispatched; it runs once the relay has sent its message."""
        return self.dispatch_many([request])[0]

    def dispatch_many(
        self, requests: Sequence[DispatchRequest], *, idempotency_key: str | None = None
    ) -> list[UUID]:
        """Validate every request first, then save all jobs in one transaction (all or none).

        With `idempotency_key`, the same key sent again with the same requests (within the
        retention window) returns the first jobs' ids and dispatches nothing.
        """
        return self.dispatch_once(requests, idempotency_key=idempotency_key).ids

    def dispatch_once(
        self, requests: Sequence[DispatchRequest], *, idempotency_key: str | None = None
    ) -> Created:
        """`dispatch_many`, saying whether this call dispatched (False: the key had been used
        for the same requests, the answer is the first jobs)."""
        tenants = {request.tenant for request in requests} or {DEFAULT_TENANT}
        if idempotency_key is not None and len(tenants) > 1:
            raise ValidationError("one idempotency key covers the jobs of one tenant")

        def build() -> tuple[list[Job], list[UUID]]:
            now = self._clock.now()
            jobs = [self.build(request, now) for request in requests]
            return jobs, [job.id for job in jobs]

        return self.idempotent.create(
            tenant=tenants.pop(),
            key=idempotency_key,
            kind="jobs",
            request=[dataclasses.replace(r, job_id=None) for r in requests],
            build=build,
        )

    def get(self, job_id: UUID, *, tenant: str) -> Job:
        try:
            job: Job = self._events.repository.get(job_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"job {job_id} not found") from None
        if job.tenant != tenant:
            raise NotFoundError(f"job {job_id} not found")
        return job

    def cancel(self, job_id: UUID, *, tenant: str, by: str, reason: str = "") -> Job:
        """Cancel a waiting job now, or ask a running one to stop."""
        return self._change(
            job_id, tenant, lambda job: job.cancel(by=by, reason=reason, at=self._clock.now())
        )

    def retry(self, job_id: UUID, *, tenant: str, by: str) -> Job:
        """Give a failed job a new round of attempts."""
        return self._change(job_id, tenant, lambda job: job.retry(by=by, at=self._clock.now()))

    def forget(self, job_id: UUID, *, tenant: str, by: str) -> Job:
        """Take a failed job off the failed list; its history stays."""
        return self._change(job_id, tenant, lambda job: job.forget(by=by, at=self._clock.now()))

    def comment(self, job_id: UUID, *, tenant: str, author: str, text: str) -> JobComment:
        """Add an operator's note to a job."""
        comment_id = uuid4()
        at = self._clock.now()
        self._change(
            job_id,
            tenant,
            lambda job: job.add_comment(comment_id=comment_id, author=author, text=text, at=at),
        )
        return JobComment(id=comment_id, author=author, text=text, at=at)

    def retry_failed(self, flt: FailedJobFilter, *, by: str, page_size: int = 500) -> BulkRetry:
        """Retry every failed job matching `flt`, a page of ids at a time.

        Memory is bounded by `page_size` jobs, however many match: each page is loaded,
        retried and saved in one transaction before the next page of ids is read.
        """
        if self._failed_jobs is None:
            raise RuntimeError("this JobService was built without a failed-jobs source")
        if not 1 <= page_size <= MAX_RETRY_PAGE:
            raise ValidationError(
                f"page_size must be between 1 and {MAX_RETRY_PAGE}", field="page_size"
            )
        retried = skipped = 0
        after_seq = 0
        while True:
            page = self._failed_jobs.failed_ids(flt, after_seq=after_seq, limit=page_size)
            if not page:
                break
            # Keyset by seq: a job retried here keeps its seq, so it is never visited twice,
            # even if it fails again before the walk ends or the read model still lags.
            after_seq = page[-1][0]
            done, missed = self._retry_page([job_id for _, job_id in page], flt.tenant, by)
            retried += done
            skipped += missed
            if len(page) < page_size:
                break
        return BulkRetry(retried=retried, skipped=skipped)

    def _retry_page(self, job_ids: Sequence[UUID], tenant: str, by: str) -> tuple[int, int]:
        """Retry these jobs in one transaction; returns (retried, skipped)."""
        at = self._clock.now()
        pending: list[tuple[UUID, list[Any]]] = []
        skipped = 0
        for job_id in job_ids:
            job = self._still_failed(job_id, tenant)
            if job is None:
                skipped += 1
                continue
            job.retry(by=by, at=at)
            # Collected once, so each job can be saved alone after a failed page.
            pending.append((job_id, collected(job)))
        retried = 0
        # A worker or another operator may have saved some of these jobs since we loaded
        # them: those are decided again, the others are saved as decided.
        results = save_groups(self._events.save, [events for _, events in pending])
        for (job_id, _), result in zip(pending, results, strict=True):
            if result or self._retry_changed(job_id, tenant, by):
                retried += 1
            else:
                skipped += 1
        return retried, skipped

    def _retry_changed(self, job_id: UUID, tenant: str, by: str) -> bool:
        """Decide again for a job that changed under us: retry it if it is still failed."""
        job = self._still_failed(job_id, tenant)
        if job is None:
            return False
        job.retry(by=by, at=self._clock.now())
        # A second conflict: it is changing right now, someone else is acting on it.
        return saved(self._events.save, job)

    def _still_failed(self, job_id: UUID, tenant: str) -> Job | None:
        try:
            job: Job = self._events.repository.get(job_id)
        except AggregateNotFoundError:
            return None
        if job.tenant != tenant or job.status is not JobStatus.FAILED or job.forgotten:
            return None
        return job

    def _change(self, job_id: UUID, tenant: str, command: Callable[[Job], None]) -> Job:
        # A worker may save the same job between our load and our save.
        return change(
            self._events, lambda: self.get(job_id, tenant=tenant), command, f"job {job_id}"
        )
