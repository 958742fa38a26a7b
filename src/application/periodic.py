"""Housekeeping that runs on a thread every few seconds (export retention, job recovery)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class PeriodicTask:
    """Runs `task` on a daemon thread: at once, then every `interval` seconds, until stopped.

    A failing run is logged and the next one tries again: housekeeping must outlive an
    outage of the database it works on.
    """

    def __init__(self, name: str, task: Callable[[], object], interval: float) -> None:
        self.name = name
        self._task = task
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"chronicle-{name}", daemon=True)

    def start(self) -> PeriodicTask:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._task()
            except Exception:
                log.warning(
                    "periodic task failed, trying again later", task=self.name, exc_info=True
                )
            if self._stop.wait(self._interval):
                break

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
