"""The scheduler with 100,000 active schedules of mixed frequencies, on PostgreSQL.

    uv run python benchmarks/scheduler.py [--schedules 100000] [--seconds 90]

Creates the schedules (saved 1,000 per transaction) in a fresh schema, projects them, then
runs one scheduler in this process for `--seconds` and prints: memory the scheduler holds
(RSS growth while loading), its CPU use per wall-clock second, and trigger lateness (due
time → tick and job committed) p50/p99/max over every trigger in the run.

Mix (as operators use schedules): 55 % daily at a random time, 25 % hourly at a random
minute, 10 % every 15 or 30 minutes, 8 % every 5 minutes, 2 % every minute — so thousands of
ticks fall due together at the top of some minutes. `--spread` gives each schedule its own
second, to see the scheduler's lateness when ticks do not pile up.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "CHRONICLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def rss_mib() -> float:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def helpers_for(rng: random.Random) -> list[dict[str, object]]:
    pick = rng.random()
    if pick < 0.55:
        return [{"name": "dailyAt", "args": [f"{rng.randrange(24)}:{rng.randrange(60):02d}"]}]
    if pick < 0.80:
        return [{"name": "hourlyAt", "args": [rng.randrange(60)]}]
    if pick < 0.90:
        return [{"name": rng.choice(["everyFifteenMinutes", "everyThirtyMinutes"]), "args": []}]
    if pick < 0.98:
        return [{"name": "everyFiveMinutes", "args": []}]
    return [{"name": "everyMinute", "args": []}]


def spread_expression(rng: random.Random) -> str:
    """The same mix, each schedule at its own second (6-field cron, seconds first)."""
    second, minute, hour = rng.randrange(60), rng.randrange(60), rng.randrange(24)
    pick = rng.random()
    if pick < 0.55:
        return f"{second} {minute} {hour} * * *"
    if pick < 0.80:
        return f"{second} {minute} * * * *"
    if pick < 0.90:
        step = rng.choice([15, 30])
        return f"{second} {minute % step}/{step} * * * *"
    if pick < 0.98:
        return f"{second} {minute % 5}/5 * * * *"
    return f"{second} * * * * *"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument(
        "--spread",
        action="store_true",
        help="give each schedule its own second instead of the top of the minute",
    )
    args = parser.parse_args()

    from application.schedules import build_frequency  # noqa: PLC0415
    from domain.schedule import Schedule  # noqa: PLC0415
    from infrastructure.logging import configure_logging  # noqa: PLC0415
    from infrastructure.settings import load_settings  # noqa: PLC0415
    from interfaces.bootstrap import bootstrap  # noqa: PLC0415

    configure_logging("json", "warning")
    schema = f"bench_sched_{uuid.uuid4().hex[:8]}"
    env = {"CHRONICLE_DATABASE_URL": DATABASE_URL, "CHRONICLE_DATABASE_SCHEMA": schema}
    app = bootstrap(load_settings(env))
    rng = random.Random(7)
    try:
        started = time.perf_counter()
        now = app.clock.now()
        batch = []
        for i in range(args.schedules):
            frequency = (
                build_frequency(spread_expression(rng), None, app.cron)
                if args.spread
                else build_frequency(None, helpers_for(rng), app.cron)
            )
            batch.append(
                Schedule.create(
                    schedule_id=uuid.uuid4(),
                    name=f"bench {i}",
                    command="demo:noop",
                    command_line="demo:noop",
                    arguments={},
                    options={},
                    frequency=frequency.to_dict(),
                    timezone=rng.choice(["UTC", "Europe/Rome", "America/New_York"]),
                    by="benchmark",
                    at=now,
                )
            )
            if len(batch) == 1000:
                app.events.save(*batch)
                batch.clear()
        if batch:
            app.events.save(*batch)
        print(f"created {args.schedules:,} schedules in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        app.runners["schedules"].catch_up()
        print(f"projected them in {time.perf_counter() - started:.1f} s")

        scheduler = app.scheduler("bench")
        before = rss_mib()
        started = time.perf_counter()
        scheduler.load()
        print(
            f"scheduler loaded {scheduler.active:,} schedules in"
            f" {time.perf_counter() - started:.1f} s, holding {rss_mib() - before:.0f} MiB"
            f" (process RSS {rss_mib():.0f} MiB)"
        )
        stop = threading.Event()
        thread = threading.Thread(target=scheduler.run_loaded, args=(stop,))
        thread.start()
        # Warm-up: ticks that fell due while loading fire late once; measure after them.
        time.sleep(10)
        scheduler.stats.lateness_ms.clear()
        triggered_before = scheduler.stats.triggered
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        time.sleep(args.seconds)
        stop.set()
        thread.join()
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        lateness = sorted(scheduler.stats.lateness_ms)
        triggered = scheduler.stats.triggered - triggered_before
        print(f"measured {wall:.0f} s after a 10 s warm-up: {triggered:,} ticks triggered")
        print(
            f"process CPU (scheduler + its database client): {cpu / wall * 100:.1f} % of one core"
            f" ({cpu / wall:.3f} s per s)"
        )
        if lateness:
            p50 = statistics.median(lateness)
            p99 = lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))]
            print(
                f"trigger lateness: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lateness[-1]:.1f} ms"
                " (goal: p99 < 100 ms)"
            )
    finally:
        app.close()
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
