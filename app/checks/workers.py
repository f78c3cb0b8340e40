"""The validation worker pool: engine work runs in long-lived worker processes, never the loop.

Each worker is its own process with its own pipe, so one job can be stopped (its worker killed
and replaced) without touching the others, and a worker is recycled after N jobs so memory that
pandas holds on to does not grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from app.core.errors import DatagateError, ServiceBusy, ValidationTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")
_SPAWN = multiprocessing.get_context("spawn")


class WorkerCrashed(DatagateError):
    status_code = 500
    code = "worker_crashed"


class _RemoteError(Exception):
    """An exception from a worker that could not be sent back as itself."""


ENGINES = "app.checks.runner"


def _worker_main(conn: Connection, preload: str | None) -> None:
    if preload:
        # Import the engines once per worker and let them build their state (a `warm_up`
        # function), so the first request does not pay for it.
        module = importlib.import_module(preload)
        if hasattr(module, "warm_up"):
            module.warm_up()
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        fn, args = message
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as exc:  # the parent decides what an error means
            try:
                conn.send(("error", exc))
            except Exception:
                conn.send(("error", _RemoteError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self, preload: str | None) -> None:
        self.conn, child = _SPAWN.Pipe()
        self.process: BaseProcess = _SPAWN.Process(
            target=_worker_main, args=(child, preload), daemon=True
        )
        self.process.start()
        child.close()
        self.jobs = 0
        self.ready = False
        self._closing = threading.Lock()

    def wait_ready(self, timeout: float) -> None:
        if not self.ready:
            if not self.conn.poll(timeout):
                raise WorkerCrashed("a validation worker did not start in time")
            self.conn.recv()
            self.ready = True

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self._close()

    def stop(self, timeout: float = 5) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
        else:
            self._close()

    def _close(self) -> None:
        # Shutdown and the job's own thread may both retire a worker at once: close the pipe once.
        with self._closing:
            if not self.conn.closed:
                self.conn.close()


class WorkerPool:
    """`size` worker processes; jobs beyond them wait, up to `max_queue` waiting (then 503)."""

    def __init__(
        self,
        size: int,
        *,
        max_jobs_per_worker: int | None = None,
        max_queue: int = 100,
        start_timeout: float = 120,
        preload: str | None = ENGINES,
    ) -> None:
        self.preload = preload
        self.size = size
        self.max_jobs_per_worker = max_jobs_per_worker
        self.max_queue = max_queue
        self.start_timeout = start_timeout
        self.restarts = 0
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Jobs waiting for a free worker."""
        return max(self._pending - self._running, 0)

    @property
    def running(self) -> int:
        return self._running

    def start(self) -> None:
        self._closed = False
        self._idle = queue.SimpleQueue()  # a restart must not find the last shutdown's sentinel
        self._threads = ThreadPoolExecutor(
            max_workers=self.size + self.max_queue, thread_name_prefix="datagate-job"
        )
        for _ in range(self.size):
            self._add_worker()

    def _add_worker(self) -> None:
        worker = _Worker(self.preload)
        with self._lock:
            self._all.add(worker)
        self._idle.put(worker)

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill() if kill else worker.stop()
        if not self._closed:
            self._add_worker()

    async def warm_up(self) -> None:
        """Wait until every worker has imported the engines."""
        for worker in list(self._all):
            await asyncio.to_thread(worker.wait_ready, self.start_timeout)

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        time_limit: float | None = None,
        what: str = "the validation",
    ) -> T:
        """Run `fn(*args)` in a worker; a job over `time_limit` seconds has its worker killed.

        `what` names the job in the timeout's message."""
        if self._threads is None:
            self.start()
        assert self._threads is not None
        with self._lock:
            if self._pending >= self.size + self.max_queue:
                raise ServiceBusy(
                    f"{self._pending} validations are running or queued (limit "
                    f"{self.size + self.max_queue}); retry later",
                    headers={"Retry-After": "5"},
                )
            self._pending += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._threads, self._run_blocking, fn, args, time_limit, what
            )
        finally:
            with self._lock:
                self._pending -= 1

    def _run_blocking(
        self, fn: Callable[..., T], args: tuple[Any, ...], timeout: float | None, what: str
    ) -> T:
        worker = self._idle.get()
        if worker is None:  # shutdown woke this waiter: no worker will come back
            self._idle.put(None)
            raise WorkerCrashed("the service is shutting down; the validation did not run")
        with self._lock:
            self._running += 1
        try:
            return self._on_worker(worker, fn, args, timeout, what)
        finally:
            with self._lock:
                self._running -= 1

    def _on_worker(
        self,
        worker: _Worker,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        timeout: float | None,
        what: str,
    ) -> T:
        try:
            worker.wait_ready(self.start_timeout)
            worker.conn.send((fn, args))
            started = time.monotonic()
            if not worker.conn.poll(timeout):
                log.warning("job over its %.0f s limit: stopping its worker", timeout or 0)
                self.restarts += 1
                self._retire(worker, kill=True)
                raise ValidationTimeout(f"{what} took longer than {timeout:.0f} s and was stopped")
            kind, value = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            log.error("a validation worker died; replacing it")
            self.restarts += 1
            self._retire(worker, kill=True)
            raise WorkerCrashed(
                "the validation worker stopped unexpectedly (out of memory?); "
                "try again or send a smaller dataset"
            ) from exc
        log.debug("job took %.3f s in worker %s", time.monotonic() - started, worker.process.pid)
        worker.jobs += 1
        if self.max_jobs_per_worker and worker.jobs >= self.max_jobs_per_worker:
            self.restarts += 1
            self._retire(worker, kill=False)
        else:
            self._idle.put(worker)
        if kind == "error":
            raise value
        result: T = value
        return result

    def shutdown(self) -> None:
        """Stop every worker, then the threads. A job still running is killed: waiting for it
        (up to the job time limit) would hold the process's exit for an hour."""
        self._closed = True
        idle: set[_Worker] = set()
        with contextlib.suppress(queue.Empty):
            while True:
                worker = self._idle.get_nowait()
                if worker is not None:
                    idle.add(worker)
        # Threads still waiting for a worker wake on the sentinel and give up.
        self._idle.put(None)
        with self._lock:
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.stop() if worker in idle else worker.kill()
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
