"""The scheduler: turns active schedules into jobs at their due times, exactly once.

It keeps every active schedule's next tick in a heap and sleeps until the earliest one (or
until the log has news: created, edited, paused, resumed or deleted schedules are seen as
soon as their events are). It never scans all schedules per tick.

Exactly once without a lock: a tick's id is derived from (schedule, due time), and so is the
id of the job it starts. A tick and its job are saved in one transaction; when several
schedulers race for the same tick, the event store accepts the first and rejects the others
(a conflict, see `application.saving`), which then learn what the winner did and move on.

Late, not missed: a tick is recorded as missed only when no scheduler was running at its due
time (see `application.scheduler_presence`). A tick this scheduler could not save (the
database is down) goes back on the heap and fires late once it can.
"""

from __future__ import annotations

import heapq
import itertools
import json
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.event_log import ChronicleEvents, EventLog, LoggedEvent, topic
from application.frequencies import Tick, next_tick
from application.jobs import DispatchRequest, JobService
from application.ports import Clock, CronCalculator
from application.saving import collected, save_groups
from application.scheduler_presence import Coverage, SchedulerPresence
from application.views.schedules import ScheduleRow, SchedulesQueries
from domain.frequency import Frequency
from domain.job import Job, JobStatus
from domain.schedule import (
    MissedRuns,
    Schedule,
    SkippedTick,
    SkipReason,
    TriggeredTick,
    job_id_for,
    skip,
    tick_id,
    trigger,
)

log = structlog.get_logger(__name__)

FOLLOWED = tuple(
    topic(cls)
    for cls in (
        Schedule.Created,
        Schedule.Edited,
        Schedule.Paused,
        Schedule.Resumed,
        Schedule.Deleted,
        TriggeredTick.Triggered,
    )
)
#: The most ticks looked at when counting what was missed (an every-second schedule down
#: for a day has 86,400); beyond this the count says "at least".
MAX_SCAN = 200_000


@dataclass(slots=True)
class _Entry:
    """What the scheduler keeps in memory per active schedule."""

    schedule_id: UUID
    tenant: str
    name: str
    command: str
    arguments: dict[str, Any]
    options: dict[str, Any]
    queue: str
    max_attempts: int
    timeout_seconds: float | None
    without_overlapping: bool
    missed_runs: str
    frequency: Frequency
    timezone: str
    last_job_id: UUID | None = None
    next: Tick | None = None
    generation: int = 0


def _slot(tick: Tick) -> str | None:
    """Only slots that do not exist (DST gap) share their due instant with another tick."""
    return tick.local.isoformat() if tick.skipped else None


@dataclass
class _Decision:
    """The events a due tick will save, and the job it starts (None when skipped)."""

    entry: _Entry
    tick: Tick
    events: list[Any]
    job_id: UUID | None


@dataclass
class SchedulerStats:
    """Trigger lateness (due → saved) of recent ticks, for logs and benchmarks."""

    triggered: int = 0
    skipped: int = 0
    lost_races: int = 0
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class Scheduler:
    """One scheduler process's loop; several may run at once."""

    def __init__(  # noqa: PLR0917 - the collaborators of one loop
        self,
        events: ChronicleEvents,
        jobs: JobService,
        schedules: SchedulesQueries,
        log: EventLog,
        cron: CronCalculator,
        clock: Clock,
        *,
        presence: SchedulerPresence | None = None,
        started_at: datetime | None = None,
        missed_after: timedelta = timedelta(seconds=5),
        presence_grace: timedelta = timedelta(seconds=5),
        presence_interval: float = 1.0,
        presence_retention: timedelta = timedelta(days=3),
        missed_limit: int = 100,
        name: str = "scheduler",
    ) -> None:
        """`started_at` is when this scheduler's process started (taken as early as the
        process can: ticks due while it loads are late, not missed); default: now."""
        self._events = events
        self._jobs = jobs
        self._schedules = schedules
        self._log = log
        self._cron = cron
        self._clock = clock
        self._missed_after = missed_after
        self._presence = presence
        self._started_at = started_at or clock.now()
        self._presence_grace = presence_grace
        self._presence_interval = presence_interval
        self._presence_retention = presence_retention
        self._pruned_at: datetime | None = None
        self._coverage: Coverage | None = None
        self.run_id = uuid4()
        # Schedules share few distinct frequencies: one Frequency object per distinct one.
        self._frequencies: dict[str, Frequency] = {}
        self._missed_limit = max(2, missed_limit)
        self._name = name
        self._entries: dict[UUID, _Entry] = {}
        self._heap: list[tuple[datetime, int, UUID, int]] = []
        self._counter = itertools.count()
        self._position = 0
        self.stats = SchedulerStats()

    # -- state ------------------------------------------------------------------------------

    def load(self) -> None:
        """Read every active schedule from the read model; follow the log from its position."""
        self._coverage = None
        self._entries.clear()
        self._heap.clear()
        position, rows = self._schedules.active_schedules()
        for row in rows:
            self._add_row(row)
        self._position = position
        log.info("scheduler loaded", schedules=len(self._entries), position=position)

    def _frequency(self, data: dict[str, Any]) -> Frequency:
        key = json.dumps(data, sort_keys=True)
        frequency = self._frequencies.get(key)
        if frequency is None:
            frequency = self._frequencies[key] = Frequency.from_dict(data)
        return frequency

    def _missed(self, tick: Tick, now: datetime) -> bool:
        """A tick is missed only if no scheduler was running at its due time; any other tick
        this scheduler is late for (it was loading, starved of CPU, waiting on the database,
        or another scheduler was) fires late."""
        if now - tick.due_at <= self._missed_after:
            return False
        return not self._running_at(tick.due_at)

    def _running_at(self, at: datetime) -> bool:
        """Whether some scheduler was running at `at`: this one since its process started,
        or another as its presence records tell (read once per step, and only for ticks due
        before this process started)."""
        if at >= self._started_at - self._presence_grace:
            return True
        if self._coverage is None:
            spans = (
                self._presence.spans(self._clock.now() - self._presence_retention)
                if self._presence is not None
                else []
            )
            self._coverage = Coverage(spans, grace=self._presence_grace)
        return self._coverage.covers(at)

    def _add_row(self, row: ScheduleRow) -> None:
        entry = _Entry(
            schedule_id=row.id,
            tenant=row.tenant,
            name=row.name,
            command=row.command,
            arguments=row.arguments,
            options=row.options,
            queue=row.queue,
            max_attempts=row.max_attempts,
            timeout_seconds=row.timeout_seconds,
            without_overlapping=row.without_overlapping,
            missed_runs=row.missed_runs,
            frequency=self._frequency(row.frequency),
            timezone=sys.intern(row.timezone),
            last_job_id=row.last_job_id,
        )
        # Ticks before the last change are not "missed": the schedule was different then.
        after = max(row.last_due_at or row.created_at, row.updated_at)
        self._entries[entry.schedule_id] = entry
        self._plan(entry, after)

    def _plan(self, entry: _Entry, after: datetime | Tick) -> None:
        """Compute the entry's next tick after `after` and push it on the heap.

        Given the previous tick rather than its time, ticks due at the same instant (a
        skipped slot inside a DST gap and the run right after the gap) are all kept.
        """
        entry.generation += 1
        entry.next = next_tick(entry.frequency, entry.timezone, after, self._cron)
        heapq.heappush(
            self._heap,
            (entry.next.due_at, next(self._counter), entry.schedule_id, entry.generation),
        )

    def next_due(self) -> datetime | None:
        """The earliest due time of any active schedule."""
        while self._heap:
            due, _, schedule_id, generation = self._heap[0]
            entry = self._entries.get(schedule_id)
            if entry is not None and entry.generation == generation:
                return due
            heapq.heappop(self._heap)
        return None

    @property
    def active(self) -> int:
        return len(self._entries)

    # -- following the log ------------------------------------------------------------------

    def follow(self) -> None:
        """Apply schedule changes (and ticks triggered elsewhere) recorded since last time."""
        self._coverage = None
        head = self._log.head()
        while self._position < head:
            batch = self._log.read(self._position, limit=500, upto=head, topics=FOLLOWED)
            for logged in batch:
                self._apply(logged)
            self._position = batch[-1].position if len(batch) == 500 else head

    def _apply(self, logged: LoggedEvent) -> None:  # noqa: C901, PLR0912 - one branch per event
        event = logged.event
        now = self._clock.now()
        if isinstance(event, TriggeredTick.Triggered):
            entry = self._entries.get(event.schedule_id)
            if entry is not None:
                entry.last_job_id = event.job_id
            return
        schedule_id = event.originator_id
        if isinstance(event, Schedule.Created):
            entry = _Entry(
                schedule_id=schedule_id,
                tenant=event.tenant,
                name=event.name,
                command=event.command,
                arguments=event.arguments,
                options=event.options,
                queue=event.queue,
                max_attempts=event.max_attempts,
                timeout_seconds=event.timeout_seconds,
                without_overlapping=event.without_overlapping,
                missed_runs=event.missed_runs,
                frequency=self._frequency(event.frequency),
                timezone=event.timezone,
            )
            self._entries[schedule_id] = entry
            # From its creation on: ticks a scheduler that sees it late (starting up, busy)
            # has missed fire late, or count as missed by the schedule's policy.
            self._plan(entry, event.at)
            log.info("schedule added", schedule_id=str(schedule_id), name=event.name)
        elif isinstance(event, Schedule.Edited):
            entry = self._entries.get(schedule_id)
            if entry is None:
                return
            if {"frequency", "timezone"} & set(event.changes):
                self._fire_before(entry, event.at, now)
            for key, change in event.changes.items():
                value = change["to"]
                if key == "frequency":
                    entry.frequency = self._frequency(value)
                elif hasattr(entry, key):
                    setattr(entry, key, value)
            if {"frequency", "timezone"} & set(event.changes):
                # From the edit on, the new frequency: its ticks this scheduler is already
                # late for are due now (or missed, by the schedule's policy).
                self._plan(entry, event.at)
            log.info("schedule edited", schedule_id=str(schedule_id), changed=sorted(event.changes))
        elif isinstance(event, Schedule.Paused | Schedule.Deleted):
            if self._entries.pop(schedule_id, None) is not None:
                log.info("schedule stopped", schedule_id=str(schedule_id))
        elif isinstance(event, Schedule.Resumed):
            try:
                schedule: Schedule = self._events.repository.get(schedule_id)
            except AggregateNotFoundError:
                return
            row_like = self._entry_from_aggregate(schedule)
            self._entries[schedule_id] = row_like
            self._record_paused(row_like, schedule, event.at)
            self._plan(row_like, max(event.at, now))
            log.info("schedule resumed", schedule_id=str(schedule_id))

    #: Ticks of the old definition fired at most when an edit is seen (more are "missed").
    EDIT_CATCH_UP = 10

    def _fire_before(self, entry: _Entry, edited_at: datetime, now: datetime) -> None:
        """Fire the entry's ticks that fell due before `edited_at` and this scheduler has not
        handled yet (it was late): they belong to the schedule as it was then."""
        tick = entry.next
        for _ in range(self.EDIT_CATCH_UP):
            if tick is None or tick.due_at > edited_at or self._missed(tick, now):
                return
            with structlog.contextvars.bound_contextvars(
                schedule_id=str(entry.schedule_id), schedule=entry.name
            ):
                self._flush([self._decide(entry, tick, now)])
            tick = next_tick(entry.frequency, entry.timezone, tick, self._cron)

    def _entry_from_aggregate(self, schedule: Schedule) -> _Entry:
        return _Entry(
            schedule_id=schedule.id,
            tenant=schedule.tenant,
            name=schedule.name,
            command=schedule.command,
            arguments=schedule.arguments,
            options=schedule.options,
            queue=schedule.queue,
            max_attempts=schedule.max_attempts,
            timeout_seconds=schedule.timeout_seconds,
            without_overlapping=schedule.without_overlapping,
            missed_runs=schedule.missed_runs,
            frequency=self._frequency(schedule.frequency),
            timezone=schedule.timezone,
        )

    def _record_paused(self, entry: _Entry, schedule: Schedule, resumed_at: datetime) -> None:
        """One skipped tick standing for every tick that fell due while paused."""
        paused_at = self._last_paused_at(schedule)
        if paused_at is None:
            return
        count, last = 0, None
        for tick in self._ticks(entry, paused_at):
            if tick.due_at > resumed_at or count >= MAX_SCAN:
                break
            count, last = count + 1, tick
        if last is not None:
            self._save_skips(
                [
                    skip(
                        entry.schedule_id,
                        tenant=entry.tenant,
                        due_at=last.due_at,
                        reason=SkipReason.PAUSED,
                        detail=f"{count} tick(s) fell due while the schedule was paused",
                        count=count,
                        at=self._clock.now(),
                    )
                ]
            )

    def _last_paused_at(self, schedule: Schedule) -> datetime | None:
        paused: datetime | None = None
        for stored in self._events.events.get(schedule.id):
            if isinstance(stored, Schedule.Paused):
                paused = stored.at
        return paused

    def _ticks(self, entry: _Entry, after: datetime | Tick) -> Iterator[Tick]:
        tick = next_tick(entry.frequency, entry.timezone, after, self._cron)
        while True:
            yield tick
            tick = next_tick(entry.frequency, entry.timezone, tick, self._cron)

    # -- firing -----------------------------------------------------------------------------

    def fire_due(self) -> int:
        """Handle every tick due by now; return how many were handled.

        Ticks due together (all the schedules at the top of a minute) are saved in shared
        transactions of up to `batch_size` ticks: one event-store write per tick would make
        the last of a thousand simultaneous ticks seconds late.
        """
        handled = 0
        pending: list[_Decision] = []
        self._coverage = None
        current: tuple[_Entry, Tick] | None = None
        try:
            while True:
                due = self.next_due()
                now = self._clock.now()
                if due is None or due > now:
                    break
                _, _, schedule_id, _ = heapq.heappop(self._heap)
                entry = self._entries[schedule_id]
                assert entry.next is not None  # noqa: S101 - planned before it was pushed
                tick = entry.next
                current = (entry, tick)
                with structlog.contextvars.bound_contextvars(
                    schedule_id=str(entry.schedule_id), schedule=entry.name
                ):
                    if self._missed(tick, now):
                        self._flush(pending)
                        last = self._handle_missed(entry, tick, now)
                    else:
                        if entry.without_overlapping and any(d.entry is entry for d in pending):
                            # Its previous tick is not saved yet: the overlap check needs it.
                            self._flush(pending)
                        pending.append(self._decide(entry, tick, now))
                        last = tick
                self._plan(entry, last)
                current = None
                handled += 1
                if len(pending) >= self.batch_size:
                    self._flush(pending)
            self._flush(pending)
        except BaseException:
            # Popped from the heap but not recorded: due again, so the next step retries
            # them (late) instead of losing them.
            self._put_back([*((d.entry, d.tick) for d in pending), *filter(None, [current])])
            raise
        return handled

    def _put_back(self, ticks: Iterable[tuple[_Entry, Tick]]) -> None:
        """Make each entry's first tick in `ticks` (in due order) its next tick again."""
        restored: set[UUID] = set()
        for entry, tick in ticks:
            if entry.schedule_id in restored or self._entries.get(entry.schedule_id) is not entry:
                continue
            restored.add(entry.schedule_id)
            entry.next = tick
            entry.generation += 1
            heapq.heappush(
                self._heap, (tick.due_at, next(self._counter), entry.schedule_id, entry.generation)
            )
        if restored:
            log.warning("ticks not recorded, they will be retried", schedules=len(restored))

    batch_size = 500

    def _decide(
        self, entry: _Entry, tick: Tick, now: datetime, *, catch_up: bool = False
    ) -> _Decision:
        """What to record for a due tick: a skip (DST gap, overlap) or a tick and its job."""
        if tick.skipped:
            reason, detail = (
                SkipReason.DST_GAP,
                (f"{tick.local:%Y-%m-%d %H:%M:%S} does not exist in {entry.timezone}"),
            )
        else:
            busy = self._running_job(entry) if entry.without_overlapping else None
            if busy is None:
                job = self._jobs.build(
                    DispatchRequest(
                        command=entry.command,
                        arguments=entry.arguments,
                        options=entry.options,
                        queue=entry.queue,
                        max_attempts=entry.max_attempts,
                        timeout_seconds=entry.timeout_seconds,
                        tenant=entry.tenant,
                        requested_by=f"schedule:{entry.name}",
                        schedule_id=str(entry.schedule_id),
                        job_id=job_id_for(entry.schedule_id, tick.due_at),
                    ),
                    now,
                )
                record = trigger(
                    entry.schedule_id,
                    tenant=entry.tenant,
                    due_at=tick.due_at,
                    job_id=job.id,
                    at=now,
                    dst=tick.dst,
                    by=f"{self._name} (catch-up)" if catch_up else self._name,
                )
                return _Decision(entry, tick, collected(record, job), job.id)
            reason, detail = SkipReason.OVERLAP, busy
        skipped = skip(
            entry.schedule_id,
            tenant=entry.tenant,
            due_at=tick.due_at,
            reason=reason,
            detail=detail,
            dst=tick.dst,
            at=now,
            slot=_slot(tick),
        )
        return _Decision(entry, tick, collected(skipped), None)

    def _flush(self, pending: list[_Decision]) -> None:
        """Save the decided ticks, together when possible; losers of a race learn the winner.

        When saving fails otherwise (the database is down), the decisions not saved go back
        into `pending`, first, for the caller to put their ticks back; then it raises.
        """
        if not pending:
            return
        remaining = deque(pending)
        pending.clear()
        saved: list[_Decision] = []

        def settled(was_saved: bool) -> None:
            decision = remaining[0]
            if was_saved:
                saved.append(decision)
            else:
                self.stats.lost_races += 1
                self._learn(decision.entry, decision.tick)
            remaining.popleft()

        try:
            save_groups(self._events.save, [d.events for d in remaining], settled=settled)
        except BaseException:
            pending[:0] = remaining
            raise
        finally:
            self._saved(saved)

    def _saved(self, saved: list[_Decision]) -> None:
        finished = self._clock.now()
        for decision in saved:
            if decision.job_id is None:
                self.stats.skipped += 1
                continue
            decision.entry.last_job_id = decision.job_id
            lateness = (finished - decision.tick.due_at).total_seconds() * 1000
            self.stats.triggered += 1
            self.stats.lateness_ms.append(lateness)
            log.info(
                "schedule triggered",
                schedule_id=str(decision.entry.schedule_id),
                job_id=str(decision.job_id),
                due_at=decision.tick.due_at.isoformat(),
                lateness_ms=round(lateness, 2),
            )

    def _running_job(self, entry: _Entry) -> str | None:
        """A description of the previous job if it is still waiting or running."""
        if entry.last_job_id is None:
            return None
        try:
            job: Job = self._events.repository.get(entry.last_job_id)
        except AggregateNotFoundError:
            return None
        if job.status in {JobStatus.WAITING, JobStatus.RUNNING}:
            return f"previous job {job.id} is still {job.status.value}"
        return None

    def _learn(self, entry: _Entry, tick: Tick) -> None:
        """Another scheduler recorded this tick first: take note of the job it started."""
        try:
            other: object = self._events.repository.get(
                tick_id(entry.schedule_id, tick.due_at, _slot(tick))
            )
        except AggregateNotFoundError:
            return
        if isinstance(other, TriggeredTick):
            entry.last_job_id = other.job_id

    def _save_skips(self, skipped: Sequence[SkippedTick]) -> None:
        def settled(was_saved: bool) -> None:
            # The ones not saved were recorded by another scheduler.
            if was_saved:
                self.stats.skipped += 1
            else:
                self.stats.lost_races += 1

        save_groups(self._events.save, [collected(one) for one in skipped], settled=settled)

    def _handle_missed(self, entry: _Entry, first: Tick, now: datetime) -> Tick:
        """Ticks that fell due while no scheduler ran: skip them, or run the last one once.

        At most `missed_limit` skipped ticks are recorded one by one; the last record stands
        for all the others, with their count. Returns the last tick handled.
        """
        horizon = now - self._missed_after
        kept: list[Tick] = []
        count = 0
        last: Tick = first
        before_last: Tick | None = None
        for tick in itertools.chain([first], self._ticks(entry, first)):
            # The missed ticks end where some scheduler was running again: those are late.
            if (
                tick.due_at > horizon
                or count >= MAX_SCAN
                or (count > 0 and self._running_at(tick.due_at))
            ):
                break
            count += 1
            before_last, last = (last if count > 1 else None), tick
            if len(kept) < self._missed_limit - 1:
                kept.append(tick)
        catch_up = (
            last if entry.missed_runs == MissedRuns.RUN_ONCE.value and not last.skipped else None
        )
        records = [
            skip(
                entry.schedule_id,
                tenant=entry.tenant,
                due_at=t.due_at,
                reason=SkipReason.DST_GAP if t.skipped else SkipReason.MISSED,
                detail="no scheduler was running at its due time",
                dst=t.dst,
                at=now,
                slot=_slot(t),
            )
            for t in kept
            if t is not catch_up
        ]
        hidden = count - len(kept) - (1 if catch_up is not None and catch_up not in kept else 0)
        anchor = last if catch_up is None else before_last
        if hidden > 0 and anchor is not None:
            records.append(
                skip(
                    entry.schedule_id,
                    tenant=entry.tenant,
                    due_at=anchor.due_at,
                    reason=SkipReason.MISSED,
                    detail=(
                        f"{hidden}{'+' if count >= MAX_SCAN else ''} more ticks missed"
                        " while no scheduler was running"
                    ),
                    count=hidden,
                    at=now,
                )
            )
        if records:
            self._save_skips(records)
        log.warning(
            "missed ticks", count=count, policy=entry.missed_runs, last_due=last.due_at.isoformat()
        )
        if catch_up is not None:
            self._flush([self._decide(entry, catch_up, now, catch_up=True)])
        return last

    # -- loop -------------------------------------------------------------------------------

    def beat(self) -> None:
        """Record that this scheduler is running now (and, hourly, forget old records)."""
        if self._presence is None:
            return
        now = self._clock.now()
        self._presence.beat(self.run_id, self._name, self._started_at, now)
        if self._pruned_at is None or now - self._pruned_at >= timedelta(hours=1):
            self._presence.prune(now - self._presence_retention)
            self._pruned_at = now

    def _beat_until(self, done: threading.Event) -> None:
        # On a thread of its own: a loop stuck on a slow commit still shows as running.
        while True:
            try:
                self.beat()
            except Exception:
                log.warning("scheduler presence not recorded", exc_info=True)
            if done.is_set():
                return
            done.wait(self._presence_interval)

    def run(self, stop: threading.Event, *, max_sleep: float = 1.0) -> None:
        """Record this scheduler's presence (until it stops), load, then fire due ticks and
        follow changes until `stop` is set."""
        done = threading.Event()
        beating = threading.Thread(
            target=self._beat_until, args=(done,), name="chronicle-scheduler-presence", daemon=True
        )
        beating.start()
        try:
            failures = 0
            while not stop.is_set():
                try:
                    self.load()
                    break
                except Exception:
                    failures += 1
                    delay = min(30.0, 0.5 * 2**failures)
                    log.exception("scheduler could not load the schedules, retrying", delay=delay)
                    stop.wait(delay)
            self.run_loaded(stop, max_sleep=max_sleep)
        finally:
            done.set()  # the thread records a last beat: the time this scheduler stopped
            beating.join(5)

    def run_loaded(self, stop: threading.Event, *, max_sleep: float = 1.0) -> None:
        """The loop of `run`, for a scheduler already loaded."""
        while not stop.is_set():
            try:
                self.follow()
                self.fire_due()
            except Exception:
                log.exception("scheduler step failed")
                stop.wait(1.0)
                continue
            due = self.next_due()
            wait = max_sleep
            if due is not None:
                wait = min(max_sleep, max(0.0, (due - self._clock.now()).total_seconds()))
            if wait > 0:
                self._log.wait(self._position, wait)
