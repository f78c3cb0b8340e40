"""The validation worker pool: CPU-heavy engine work runs in other processes, never the event loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from app.core.errors import DatagateError

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerCrashed(DatagateError):
    status_code = 500
    code = "worker_crashed"


def _warm_up() -> int:
    """Import the engines once per worker, so the first request does not pay for it."""
    import app.checks.expectations  # noqa: F401

    return os.getpid()


class WorkerPool:
    """A process pool that replaces itself when a worker dies, and recycles workers after N jobs."""

    def __init__(self, size: int, *, max_tasks_per_child: int | None = None) -> None:
        self.size = size
        self.max_tasks_per_child = max_tasks_per_child
        self._executor: ProcessPoolExecutor | None = None
        self.restarts = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn: forking a process that runs an event loop and threads is unsafe.
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),
            max_tasks_per_child=self.max_tasks_per_child,
        )

    def start(self) -> None:
        self._executor = self._new_executor()

    async def warm_up(self) -> None:
        await asyncio.gather(*(self.run(_warm_up) for _ in range(self.size)))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self.start()
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except BrokenProcessPool as exc:
            log.error("a validation worker died; replacing the pool")
            self._replace()
            raise WorkerCrashed(
                "the validation worker stopped unexpectedly (out of memory?); try again "
                "or send a smaller dataset"
            ) from exc

    def _replace(self) -> None:
        old = self._executor
        self._executor = self._new_executor()
        self.restarts += 1
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
