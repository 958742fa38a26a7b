"""Per-job time limits: a watchdog thread raises `JobTimedOutError` inside the running thread.

Dramatiq's TimeLimit middleware is not used: it is armed around the whole actor, so its
exception could land while the worker records the outcome, and it needs the worker's boot
signal to work in-process. This one is armed around the command alone.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time

from application.ports import JobTimedOutError


class _Limit:
    def __init__(self, limiter: ThreadTimeLimiter, seconds: float | None) -> None:
        self._limiter = limiter
        self._seconds = seconds
        self._token: int | None = None

    def __enter__(self) -> None:
        if self._seconds is not None:
            self._token = self._limiter.arm(threading.get_ident(), self._seconds)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            self._limiter.disarm(self._token)


class ThreadTimeLimiter:
    """One watchdog thread for the whole process, sleeping until the nearest deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, int]] = []
        self._armed: dict[int, int] = {}
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None

    def limit(self, seconds: float | None) -> _Limit:
        return _Limit(self, seconds)

    def arm(self, thread_id: int, seconds: float) -> int:
        token = next(self._tokens)
        with self._cond:
            self._armed[token] = thread_id
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, thread_id))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="chronicle-time-limits", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        # Under the lock, so the watchdog never fires for a limit that was just disarmed.
        with self._cond:
            self._armed.pop(token, None)

    def _watch(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token, thread_id = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                del self._armed[token]
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(JobTimedOutError)
                )
