"""Keeps a number of child processes running: `chronicle worker --processes N`."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

import structlog

log = structlog.get_logger(__name__)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started: float = 0.0
    #: Exits in a row, each after less than `stable_after` seconds of life.
    crashes: int = 0
    restart_at: float | None = None


class Supervisor:
    """Starts `count` children with `start(index)`; one that exits while the supervisor runs
    is logged and replaced after a back-off (doubling from `min_backoff` to `max_backoff`
    while it keeps dying young, reset once a child has lived `stable_after` seconds)."""

    def __init__(
        self,
        start: Callable[[int], BaseProcess],
        count: int,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        stable_after: float = 60.0,
        poll: float = 0.2,
    ) -> None:
        self._start = start
        self._slots = [_Slot(index) for index in range(count)]
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._stable_after = stable_after
        self._poll = poll
        self.restarts = 0

    def pids(self) -> list[int | None]:
        return [slot.process.pid if slot.process else None for slot in self._slots]

    def _launch(self, slot: _Slot) -> None:
        slot.process = self._start(slot.index)
        slot.started = time.monotonic()
        slot.restart_at = None

    def run(self, stop: threading.Event) -> None:
        """Start the children, replace those that die, until `stop` is set; then stop
        them (SIGTERM: each finishes its running jobs) and wait for them."""
        for slot in self._slots:
            self._launch(slot)
        log.info("worker processes started", processes=len(self._slots), pids=self.pids())
        try:
            while not stop.wait(self._poll):
                self._watch()
        finally:
            self._stop_children()

    def _watch(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    self._launch(slot)
                    self.restarts += 1
                    log.info(
                        "worker process replaced",
                        slot=slot.index,
                        pid=slot.process.pid if slot.process else None,
                    )
                continue
            if process is None or process.is_alive():
                continue
            process.join(0)
            lived = now - slot.started
            slot.crashes = 1 if lived >= self._stable_after else slot.crashes + 1
            delay = min(self._max_backoff, self._min_backoff * 2 ** (slot.crashes - 1))
            slot.restart_at = now + delay
            log.error(
                "worker process exited, replacing it",
                slot=slot.index,
                pid=process.pid,
                reason=_exit_reason(process.exitcode),
                lived_s=round(lived, 1),
                restart_in_s=delay,
            )

    def _stop_children(self, timeout: float = 60.0) -> None:
        alive = [s.process for s in self._slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            process.terminate()  # SIGTERM: each child finishes its running jobs
        deadline = time.monotonic() + timeout
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
