"""The composition root: the only place that builds concrete classes and wires them."""

from __future__ import annotations

import importlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import structlog

from application.batches import BatchProcess, BatchService
from application.builtin_commands import register_builtins
from application.commands import CommandRegistry, default_registry
from application.event_log import ChronicleEvents
from application.execution import JobExecutor, PauseGate
from application.exports.exporters import ExporterRegistry, default_exporters
from application.exports.service import EXPORT_COMMAND, ExportService, register_export_command
from application.exports.view import ExportsProjection, ExportsQueries
from application.group_commit import GroupCommitter
from application.imports.importers import builtin_importers, default_importers
from application.imports.service import IMPORT_COMMAND, ImportService, register_import_command
from application.imports.view import ImportsProjection, ImportsQueries
from application.jobs import JobService
from application.outbox import OutboxRelay
from application.periodic import PeriodicTask
from application.ports import Clock, CronCalculator, JobQueue, SystemClock, WorkerHeartbeats
from application.principals import AccountService, Authenticator, TokenService
from application.projections import Projection, ProjectionRunner, ProjectionStore
from application.queue_control import PauseWatcher, QueueControlService
from application.reads.batches import BatchReads
from application.reads.exports import ExportReads
from application.reads.imports import ImportReads
from application.reads.jobs import JobReads, JobsReadModel
from application.reads.read_your_writes import ReadYourWrites
from application.reads.schedules import ScheduleReads, SchedulesReadModel
from application.recovery import JobRecovery
from application.scheduler import Scheduler
from application.schedules import ScheduleService
from application.sessions import Sessions
from application.stopped_jobs import StoppedJobWatcher
from application.views.batches import BatchesProjection, BatchesQueries
from application.views.job_timeline import JobTimelineProjection
from application.views.jobs import JobsProjection
from application.views.principals import PrincipalsProjection, PrincipalsQueries
from application.views.queue_metrics import QueueMetricsProjection, QueueMetricsQueries
from application.views.queue_pauses import QueuePausesProjection, QueuePausesQueries
from application.views.schedules import ScheduleRunsProjection, SchedulesProjection
from domain.job import QUEUES
from infrastructure.builtin_exporters import register_builtin_exporters
from infrastructure.contacts import SqlContactStore
from infrastructure.cron import CroniterCalculator
from infrastructure.event_store import (
    StoreEventLog,
    create_event_tables,
    open_event_store_pool,
    postgres_env,
    setup_lock,
    sqlite_env,
    wait_for_postgres,
)
from infrastructure.export_files import ExportFileStore
from infrastructure.import_files import LocalImportFiles
from infrastructure.import_keys import SqliteUniqueKeys
from infrastructure.passwords import Argon2idHasher
from infrastructure.read_models.batches import SqlBatchQueries, batch_process_store, batches_store
from infrastructure.read_models.exports import SqlExportQueries, exports_store
from infrastructure.read_models.imports import SqlImportQueries, imports_store
from infrastructure.read_models.jobs import SqlJobsQueries, jobs_store, timeline_store
from infrastructure.read_models.principals import SqlPrincipals, principals_store
from infrastructure.read_models.queue_metrics import SqlQueueMetrics, queue_metrics_store
from infrastructure.read_models.queue_pauses import SqlQueuePauses, queue_pauses_store
from infrastructure.read_models.schedules import SqlScheduleQueries, runs_store, schedules_store
from infrastructure.read_models.store import TrackingOnlyStore, create_tracking
from infrastructure.scheduler_presence import SqlSchedulerPresence
from infrastructure.sessions import SqlFailureCounts, SqlSessions
from infrastructure.settings import Settings
from infrastructure.sql import Database, PostgresDatabase, SqliteDatabase
from infrastructure.time_limit import ThreadTimeLimiter
from infrastructure.worker_heartbeats import SqlWorkerHeartbeats


class FollowerStore(ProjectionStore[Any], Protocol):
    """A projection store whose tables (or tracking row) can be created."""

    def create(self) -> None: ...


@dataclass(frozen=True)
class ReadModel:
    """One follower of the log: its name, where it writes and what it does with events.

    `rebuildable` read models are replayed from zero by `chronicle projections rebuild`; the
    others are reactions (they act on events once) or keep state of their own.
    """

    name: str
    store: Callable[[Database], FollowerStore]
    projection: Callable[[Chronicle], Projection[Any]]
    rebuildable: bool = True


#: Every follower of the log but the outbox relay (which needs a broker: `add_outbox`), in
#: the order they are built, run and listed.
READ_MODELS: tuple[ReadModel, ...] = (
    ReadModel("jobs", jobs_store, lambda _: JobsProjection()),
    ReadModel("job_timeline", timeline_store, lambda _: JobTimelineProjection()),
    ReadModel("schedules", schedules_store, lambda _: SchedulesProjection()),
    ReadModel("schedule_runs", runs_store, lambda _: ScheduleRunsProjection()),
    ReadModel("queue_pauses", queue_pauses_store, lambda _: QueuePausesProjection()),
    ReadModel("queue_metrics", queue_metrics_store, lambda _: QueueMetricsProjection()),
    ReadModel("batches", batches_store, lambda _: BatchesProjection()),
    ReadModel("imports", imports_store, lambda _: ImportsProjection()),
    ReadModel("exports", exports_store, lambda _: ExportsProjection()),
    ReadModel("principals", principals_store, lambda _: PrincipalsProjection()),
    # The batch process manager dispatches batch callbacks; its table is its own state.
    ReadModel(
        "batch_process",
        batch_process_store,
        lambda c: BatchProcess(
            c.events, c.jobs, c.clock, backoff_seconds=c.settings.default_backoff_seconds
        ),
        rebuildable=False,
    ),
    # Fails the import or export whose job gave up or was cancelled: none stays running.
    ReadModel(
        "system_jobs",
        lambda db: TrackingOnlyStore(db, "system_jobs", None),
        lambda c: StoppedJobWatcher(
            c.events, {IMPORT_COMMAND: c.imports.job_stopped, EXPORT_COMMAND: c.exports.job_stopped}
        ),
        rebuildable=False,
    ),
)
#: The relay that publishes committed dispatches to the broker (see `Chronicle.add_outbox`).
OUTBOX = "outbox"
#: The read models `chronicle projections rebuild` can rebuild.
PROJECTIONS = tuple(model.name for model in READ_MODELS if model.rebuildable)


def load_command_modules(registry: CommandRegistry, modules: tuple[str, ...]) -> None:
    """Import the application's command modules; their decorators register on `registry`."""
    if not registry.names():
        register_builtins(registry)
    for module in modules:
        importlib.import_module(module)


def postgres_conninfo(settings: Settings) -> str:
    assert settings.database_url is not None  # noqa: S101 - callers check `embedded`
    return settings.database_url


@dataclass
class Chronicle:
    """Everything a Chronicle process needs, built once from the settings."""

    settings: Settings
    events: ChronicleEvents
    log: StoreEventLog
    db: Database
    registry: CommandRegistry
    clock: Clock
    jobs: JobService
    queries: JobsReadModel
    job_reads: JobReads
    schedules: ScheduleService
    schedule_queries: SchedulesReadModel
    schedule_reads: ScheduleReads
    cron: CronCalculator
    queue_control: QueueControlService
    queue_pauses: QueuePausesQueries
    queue_metrics: QueueMetricsQueries
    batches: BatchService
    batch_queries: BatchesQueries
    batch_reads: BatchReads
    imports: ImportService
    import_queries: ImportsQueries
    import_reads: ImportReads
    exporters: ExporterRegistry
    exports: ExportService
    export_queries: ExportsQueries
    export_reads: ExportReads
    heartbeats: WorkerHeartbeats
    principals: PrincipalsQueries
    accounts: AccountService
    tokens: TokenService
    authenticator: Authenticator
    sessions: Sessions
    runners: dict[str, ProjectionRunner[Any]] = field(default_factory=dict)
    queue: JobQueue | None = None

    def projection_runners(self) -> list[ProjectionRunner[Any]]:
        """The runners of the rebuildable read models (reactions and the outbox excluded)."""
        return [self.runners[name] for name in PROJECTIONS]

    def executor(
        self,
        queue: JobQueue,
        worker_id: str | None = None,
        *,
        pauses: PauseGate | None = None,
        stopping: threading.Event | None = None,
    ) -> JobExecutor:
        """A job executor for this process; start `heartbeat(executor)` with the same id.

        `pauses` (a `PauseWatcher`) defers jobs of paused queues; `stopping` is set when the
        worker stops (see `start_worker`).
        """
        return JobExecutor(
            self.events,
            self.registry,
            self.clock,
            queue,
            ThreadTimeLimiter(),
            worker_id=worker_id or self.worker_id,
            save=GroupCommitter(self.events).save,
            heartbeats=self.heartbeats,
            pauses=pauses,
            worker_lost_after=self.worker_lost_after,
            stopping=stopping,
        )

    @property
    def worker_lost_after(self) -> timedelta:
        return timedelta(seconds=self.settings.worker_lost_after_seconds)

    def recovery(self, queue: JobQueue) -> JobRecovery:
        """Finds stranded jobs (lost attempts, due jobs without a message) and restarts them."""
        return JobRecovery(
            self.events,
            self.queries,
            self.heartbeats,
            queue,
            self.queue_pauses,
            self.clock,
            lost_after=self.worker_lost_after,
            stranded_after=timedelta(seconds=self.settings.stranded_after_seconds),
        )

    def recovery_sweeper(self, recovery: JobRecovery) -> PeriodicTask:
        """`recovery.sweep()` on a thread, several times per `worker_lost_after`."""
        interval = max(1.0, min(10.0, self.settings.worker_lost_after_seconds / 3))
        return PeriodicTask("job-recovery", recovery.sweep, interval)

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def heartbeat(
        self,
        executor: JobExecutor | None = None,
        pauses: PauseWatcher | None = None,
        *,
        worker_id: str | None = None,
    ) -> Heartbeat:
        """Beat now, then on a thread (six times per `worker_lost_after`), naming the jobs
        `executor` runs and the log position `pauses` acts on, until stopped; and at once
        whenever the pauses it acts on change (what a pause request waits for)."""
        interval = max(0.5, self.settings.worker_lost_after_seconds / 6)
        heartbeat = Heartbeat(
            self.heartbeats,
            self.clock,
            worker_id or self.worker_id,
            interval,
            running=executor.running if executor is not None else frozenset,
            pauses_seen=(lambda: pauses.position) if pauses is not None else (lambda: 0),
        )
        if pauses is not None:
            pauses.on_change = heartbeat.beat
        return heartbeat

    def pause_watcher(self, interval: float = 0.5) -> PauseWatcher:
        """The queue pauses as a worker sees them, re-read every `interval` s until stopped."""
        return PauseWatcher(
            self.queue_pauses, QUEUES, events=self.events, log=self.log, interval=interval
        ).start()

    def add_outbox(self, queue: JobQueue) -> ProjectionRunner[JobQueue]:
        """The relay that turns committed dispatches into broker messages."""
        store = TrackingOnlyStore(self.db, OUTBOX, queue)
        store.create()
        # No gathering delay: the relay is on the path from dispatch to a worker starting.
        runner: ProjectionRunner[JobQueue] = ProjectionRunner(
            OutboxRelay(self.clock),
            store,
            self.log,
            batch_size=self.settings.projection_batch_size,
            gather_seconds=0.0,
        )
        self.runners[OUTBOX] = runner
        self.queue = queue
        return runner

    def scheduler(
        self, name: str | None = None, *, started_at: datetime | None = None
    ) -> Scheduler:
        """A scheduler loop for this process (several may run at once); `started_at` is when
        the process started (`process_started_at()`), by default now."""
        return Scheduler(
            self.events,
            self.jobs,
            self.schedule_queries,
            self.log,
            self.cron,
            self.clock,
            presence=SqlSchedulerPresence(self.db),
            started_at=started_at,
            name=name or f"scheduler@{self.worker_id}",
        )

    def close(self) -> None:
        self.log.close()
        self.db.close()
        self.events.close()


def _create_read_models(db: Database) -> dict[str, FollowerStore]:
    """Create the tables of every read model (and the other tables of the read-model
    database); returns the read models' stores by name."""
    create_tracking(db)
    SqlWorkerHeartbeats(db).create()
    SqlSchedulerPresence(db).create()
    SqlSessions(db).create()
    stores = {model.name: model.store(db) for model in READ_MODELS}
    for store in stores.values():
        store.create()
    # The contacts table is the built-in importer's target, not a read model.
    SqlContactStore(db).create()
    return stores


def _open_postgres(
    url: str, settings: Settings, connect_timeout: float | None
) -> tuple[ChronicleEvents, PostgresDatabase, dict[str, FollowerStore]]:
    """The event store and read models on PostgreSQL, their tables created if missing.

    Every connection the set-up uses is opened before the set-up lock is taken: a process
    that waits for a connection (the server is down, or out of connections) says so and
    stalls no other process.
    """
    pool_size = settings.database_pool_size
    db = PostgresDatabase(url, schema=settings.database_schema, max_size=pool_size)
    built: list[ChronicleEvents] = []

    def open_pools() -> None:
        # Building the application already reads from the database: it is retried too.
        if not built:
            env = postgres_env(url, settings.database_schema, pool_size=pool_size)
            built.append(ChronicleEvents(env=env))
        open_event_store_pool(built[0], timeout=5)
        db.wait_open(timeout=5)

    try:
        wait_for_postgres(url, timeout=connect_timeout, probe=open_pools)
        events = built[0]
        with setup_lock(url, settings.database_schema):
            create_event_tables(events)
            stores = _create_read_models(db)
    except BaseException:
        db.close()
        for app in built:
            app.close()
        raise
    return events, db, stores


def bootstrap(
    settings: Settings,
    *,
    registry: CommandRegistry | None = None,
    clock: Clock | None = None,
    exporters: ExporterRegistry | None = None,
    connect_timeout: float | None = 10.0,
) -> Chronicle:
    """Build the event store, read models, use cases and projection runners.

    On PostgreSQL, waits up to `connect_timeout` seconds for the database (None: as long as
    it takes, saying so in the log — the long-running processes).
    """
    base = registry if registry is not None else default_registry
    load_command_modules(base, settings.command_modules)
    # This Chronicle's system commands (imports, exports) go on a child registry, so several
    # Chronicles in one process (tests) each run their own.
    registry = CommandRegistry(parent=base)
    clock = clock or SystemClock()
    db: Database
    if settings.embedded:
        events = ChronicleEvents(env=sqlite_env(settings.events_path))
        log = StoreEventLog(events)
        db = SqliteDatabase(settings.read_models_path)
        stores = _create_read_models(db)
    else:
        url = postgres_conninfo(settings)
        events, db, stores = _open_postgres(url, settings, connect_timeout)
        channel = getattr(events.recorder, "channel_name", None)
        log = StoreEventLog(events, listen_url=url, channel=channel)
    batch = settings.projection_batch_size
    cron = CroniterCalculator()
    queries = SqlJobsQueries(db)
    jobs = JobService(
        events,
        registry,
        clock,
        default_backoff_seconds=settings.default_backoff_seconds,
        failed_jobs=queries,
        idempotency_retention=timedelta(hours=settings.idempotency_retention_hours),
    )
    imports = ImportService(
        events,
        jobs,
        builtin_importers(SqlContactStore(db), default_importers),
        LocalImportFiles(settings.files_dir / "imports"),
        clock,
        chunk_size=settings.import_chunk_size,
        max_bytes=settings.import_max_bytes,
        # Local to the worker (not the shared files folder): a run's scratch index.
        unique_keys=lambda import_id: SqliteUniqueKeys(
            settings.data_dir / "tmp" / f"import-keys-{import_id}.sqlite3"
        ),
    )
    register_import_command(registry, imports)
    # The application's exporters (`default_exporters`) and the built-in ones, on a child
    # registry of this Chronicle's own, like the system commands.
    export_registry = ExporterRegistry(
        parent=exporters if exporters is not None else default_exporters
    )
    register_builtin_exporters(export_registry, db)
    export_queries = SqlExportQueries(db)
    exports = ExportService(
        events,
        jobs,
        clock,
        exporters=export_registry,
        files=ExportFileStore(settings.files_dir / "exports"),
        queries=export_queries,
        retention_hours=settings.export_retention_hours,
    )
    register_export_command(registry, exports)
    schedule_queries = SqlScheduleQueries(db)
    batch_queries = SqlBatchQueries(db)
    import_queries = SqlImportQueries(db)
    heartbeats = SqlWorkerHeartbeats(db)
    reads = ReadYourWrites(events)
    principals = SqlPrincipals(db)
    hasher = Argon2idHasher()
    authenticator = Authenticator(events, hasher, clock)
    chronicle = Chronicle(
        settings=settings,
        events=events,
        log=log,
        db=db,
        registry=registry,
        clock=clock,
        jobs=jobs,
        queries=queries,
        job_reads=JobReads(reads, queries),
        schedules=ScheduleService(events, registry, jobs, cron, clock),
        schedule_queries=schedule_queries,
        schedule_reads=ScheduleReads(reads, schedule_queries),
        cron=cron,
        queue_control=QueueControlService(
            events,
            clock,
            heartbeats=heartbeats,
            worker_lost_after=timedelta(seconds=settings.worker_lost_after_seconds),
        ),
        queue_pauses=SqlQueuePauses(db),
        queue_metrics=SqlQueueMetrics(db),
        batches=BatchService(events, jobs, clock, batch_queries),
        batch_queries=batch_queries,
        batch_reads=BatchReads(reads, batch_queries),
        imports=imports,
        import_queries=import_queries,
        import_reads=ImportReads(reads, import_queries),
        exporters=export_registry,
        exports=exports,
        export_queries=export_queries,
        export_reads=ExportReads(reads, export_queries),
        heartbeats=heartbeats,
        principals=principals,
        accounts=AccountService(events, clock, hasher),
        tokens=TokenService(events, clock, principals),
        authenticator=authenticator,
        sessions=Sessions(
            authenticator,
            SqlSessions(db),
            SqlFailureCounts(db),
            clock,
            idle=timedelta(minutes=settings.session_idle_minutes),
            lifetime=timedelta(hours=settings.session_lifetime_hours),
        ),
    )
    for model in READ_MODELS:
        projection = model.projection(chronicle)
        if projection.name != model.name:
            raise RuntimeError(f"read model {model.name} runs projection {projection.name}")
        chronicle.runners[model.name] = ProjectionRunner(
            projection, stores[model.name], log, batch_size=batch
        )
    return chronicle


class Heartbeat:
    """Tells other workers this process is alive and which jobs it runs, so they can tell a
    dead worker's jobs (and the attempts a live worker no longer runs)."""

    def __init__(
        self,
        heartbeats: WorkerHeartbeats,
        clock: Clock,
        worker_id: str,
        interval: float,
        *,
        running: Callable[[], frozenset[UUID]] = frozenset,
        pauses_seen: Callable[[], int] = lambda: 0,
    ) -> None:
        self._heartbeats = heartbeats
        self._clock = clock
        self.worker_id = worker_id
        self._interval = interval
        self._running = running
        self._pauses_seen = pauses_seen
        self._stop = threading.Event()
        self.beat()
        self._thread = threading.Thread(target=self._run, name="chronicle-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        """Beat now (also from the pause watcher, when the pauses it acts on change)."""
        # The list first, then the time: a job started after the list was taken was started
        # before this beat's time only by less than `NOT_RUNNING_GRACE`.
        pauses_seen = self._pauses_seen()
        running = self._running()
        self._heartbeats.beat(self.worker_id, self._clock.now(), running, pauses_seen)

    def _run(self) -> None:
        failing = False  # said once per outage
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception:
                if not failing:
                    structlog.get_logger(__name__).warning("heartbeat failed", exc_info=True)
                failing = True
            else:
                failing = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval + 1)
        try:
            self._heartbeats.forget(self.worker_id)
        except Exception:
            structlog.get_logger(__name__).warning("could not remove the heartbeat", exc_info=True)


class RunnerThreads:
    """Projection runners (and the outbox relay) on background threads, stopped together."""

    def __init__(self, runners: list[ProjectionRunner[Any]]) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=runner.run, args=(self._stop,), name=f"chronicle-{runner.name}", daemon=True
            )
            for runner in runners
        ]

    def start(self) -> RunnerThreads:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
