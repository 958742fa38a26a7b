"""Schedule use cases: create, edit, pause, resume, delete, run now, comment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from application.commands import CommandRegistry, ParsedCommand
from application.event_log import ChronicleEvents
from application.frequencies import validate_timezone
from application.jobs import DispatchRequest, JobService
from application.ports import Clock, CronCalculator
from application.saving import change
from domain.frequency import Frequency
from domain.schedule import MissedRuns, Schedule, trigger
from domain.shared import DEFAULT_TENANT, NotFoundError, ValidationError


@dataclass(frozen=True)
class ScheduleRequest:
    """Settings of a new schedule, as an operator gives them."""

    name: str
    command_line: str | None = None
    command: str | None = None
    arguments: list[Any] | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    expression: str | None = None
    helpers: list[dict[str, Any]] | None = None
    timezone: str = "UTC"
    description: str = ""
    queue: str = "default"
    max_attempts: int = 3
    timeout_seconds: float | None = None
    without_overlapping: bool = False
    missed_runs: str = MissedRuns.SKIP.value
    active: bool = True
    tenant: str = DEFAULT_TENANT
    by: str = "system"


def build_frequency(
    expression: str | None, helpers: list[dict[str, Any]] | None, cron: CronCalculator
) -> Frequency:
    """A validated frequency from either a cron expression or a list of helpers."""
    if (expression is None) == (helpers is None):
        raise ValidationError("give either expression or helpers", field="expression")
    frequency = (
        Frequency.from_expression(expression)
        if expression is not None
        else Frequency.from_helpers(helpers or [])
    )
    cron.validate(frequency.expression)
    return frequency


class ScheduleService:
    """Writes Schedule aggregates; the scheduler process turns them into jobs."""

    def __init__(
        self,
        events: ChronicleEvents,
        registry: CommandRegistry,
        jobs: JobService,
        cron: CronCalculator,
        clock: Clock,
    ) -> None:
        self._events = events
        self._registry = registry
        self._jobs = jobs
        self._cron = cron
        self._clock = clock

    def _command(
        self,
        command_line: str | None,
        command: str | None,
        arguments: list[Any] | dict[str, Any] | None,
        options: dict[str, Any] | None,
    ) -> ParsedCommand:
        return self._jobs.parse(
            DispatchRequest(
                command_line=command_line, command=command, arguments=arguments, options=options
            )
        )

    def create(self, request: ScheduleRequest) -> UUID:
        parsed = self._command(
            request.command_line, request.command, request.arguments, request.options
        )
        frequency = build_frequency(request.expression, request.helpers, self._cron)
        timezone = validate_timezone(request.timezone)
        now = self._clock.now()
        schedule = Schedule.create(
            schedule_id=uuid4(),
            tenant=request.tenant,
            name=request.name,
            description=request.description,
            command=parsed.name,
            command_line=parsed.command_line(),
            arguments=parsed.arguments,
            options=parsed.options,
            frequency=frequency.to_dict(),
            timezone=timezone,
            queue=request.queue,
            max_attempts=request.max_attempts,
            timeout_seconds=request.timeout_seconds,
            without_overlapping=request.without_overlapping,
            missed_runs=request.missed_runs,
            by=request.by,
            at=now,
        )
        if not request.active:
            schedule.pause(by=request.by, at=now)
        self._events.save(schedule)
        return schedule.id

    def get(self, schedule_id: UUID, *, tenant: str) -> Schedule:
        try:
            schedule: Schedule = self._events.repository.get(schedule_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"schedule {schedule_id} not found") from None
        if schedule.tenant != tenant or schedule.deleted:
            raise NotFoundError(f"schedule {schedule_id} not found")
        return schedule

    def edit(self, schedule_id: UUID, changes: dict[str, Any], *, tenant: str, by: str) -> Schedule:
        """Change settings; a new command line or frequency is validated like on create."""
        changes = dict(changes)
        command_keys = {"command_line", "command", "arguments", "options"}
        if command_keys & set(changes):
            parsed = self._command(
                changes.pop("command_line", None),
                changes.pop("command", None),
                changes.pop("arguments", None),
                changes.pop("options", None),
            )
            changes.update(
                command=parsed.name,
                command_line=parsed.command_line(),
                arguments=parsed.arguments,
                options=parsed.options,
            )
        if "expression" in changes or "helpers" in changes:
            frequency = build_frequency(
                changes.pop("expression", None), changes.pop("helpers", None), self._cron
            )
            changes["frequency"] = frequency.to_dict()
        if "timezone" in changes:
            changes["timezone"] = validate_timezone(changes["timezone"])
        return self._change(
            schedule_id, tenant, lambda s: s.edit(changes=changes, by=by, at=self._clock.now())
        )

    def pause(self, schedule_id: UUID, *, tenant: str, by: str) -> Schedule:
        return self._change(schedule_id, tenant, lambda s: s.pause(by=by, at=self._clock.now()))

    def resume(self, schedule_id: UUID, *, tenant: str, by: str) -> Schedule:
        return self._change(schedule_id, tenant, lambda s: s.resume(by=by, at=self._clock.now()))

    def delete(self, schedule_id: UUID, *, tenant: str, by: str) -> Schedule:
        return self._change(schedule_id, tenant, lambda s: s.delete(by=by, at=self._clock.now()))

    def comment(self, schedule_id: UUID, *, tenant: str, author: str, text: str) -> UUID:
        comment_id = uuid4()
        self._change(
            schedule_id,
            tenant,
            lambda s: s.add_comment(
                comment_id=comment_id, author=author, text=text, at=self._clock.now()
            ),
        )
        return comment_id

    def run_now(self, schedule_id: UUID, *, tenant: str, by: str) -> UUID:
        """Start the schedule's command at once, recorded as a manual tick of the schedule."""
        schedule = self.get(schedule_id, tenant=tenant)
        now = self._clock.now()
        job = self._jobs.build(
            DispatchRequest(
                command=schedule.command,
                arguments=schedule.arguments,
                options=schedule.options,
                queue=schedule.queue,
                max_attempts=schedule.max_attempts,
                timeout_seconds=schedule.timeout_seconds,
                tenant=schedule.tenant,
                requested_by=by,
                schedule_id=str(schedule.id),
            ),
            now,
        )
        tick = trigger(
            schedule.id,
            tenant=schedule.tenant,
            due_at=now,
            job_id=job.id,
            at=now,
            manual=True,
            by=by,
            tick=uuid4(),
        )
        self._events.save(tick, job)
        return job.id

    def _change(
        self, schedule_id: UUID, tenant: str, command: Callable[[Schedule], object]
    ) -> Schedule:
        return change(
            self._events,
            lambda: self.get(schedule_id, tenant=tenant),
            command,
            f"schedule {schedule_id}",
        )
