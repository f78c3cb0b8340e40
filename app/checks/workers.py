"""The validation worker pool: engine work runs in long-lived worker processes, never the loop.

Each worker is its own process with its own pipe, so one job can be stopped (its worker killed
and replaced) without touching the others, and a worker is recycled after N jobs so memory that
pandas holds on to does not grow without bound.

The pool outlives anything a worker or a job does to it: a job that cannot be pickled, a worker
killed while idle or mid-job, an answer that cannot be read, a caller that goes away. Each
either gives the worker back or replaces it; none leaves the pool a worker short. Workers die
with the process that started them (PR_SET_PDEATHSIG, and a watchdog where that is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from app.core.errors import DatagateError, ServiceBusy, ValidationTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")
_SPAWN = multiprocessing.get_context("spawn")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_CHECK_S = 1.0


class WorkerCrashed(DatagateError):
    status_code = 500
    code = "worker_crashed"


class JobNotSent(DatagateError):
    """The job could not be pickled for a worker (nested too deeply, not serialisable)."""

    status_code = 422
    code = "invalid_request"


class JobCancelled(DatagateError):
    """The caller went away (a client that disconnected); the job's worker was stopped."""

    status_code = 499
    code = "client_closed_request"


class _RemoteError(Exception):
    """An exception from a worker that could not be sent back as itself."""


class _WorkerLost(Exception):
    """The worker died before the job reached it: the job may run on another one."""


ENGINES = "app.checks.runner"


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive the service (kill -9 of the server would leave it running
    until its job ends, holding memory and CPU). Linux kills it with the parent; elsewhere, or
    if prctl is missing, a watchdog thread notices the parent is gone within a second."""
    # The signal comes when the *thread* that started this worker ends, not only its process:
    # workers are started by the thread that starts the pool, the pool's job threads and its
    # monitor, which all live as long as the pool does.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), daemon=True, name="datagate-parent-watch"
    ).start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def _worker_main(conn: Connection, preload: str | None, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
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
        except (EOFError, OSError, KeyboardInterrupt):
            return
        except BaseException as exc:  # read whole but not unpickled here: the pipe is in step
            _answer(conn, "error", _RemoteError(f"the job could not be read: {type(exc).__name__}"))
            continue
        if message is None:
            return
        # Acknowledged before it runs: the parent tells a worker that died before a job (the job
        # may run elsewhere) from a job that killed its worker.
        conn.send(("started", None))
        fn, args = message
        try:
            result = fn(*args)
        except BaseException as exc:  # the parent decides what an error means
            _answer(conn, "error", exc)
        else:
            _answer(conn, "ok", result)


def _answer(conn: Connection, kind: str, value: Any) -> None:
    try:
        conn.send((kind, value))
    except (OSError, EOFError):
        raise
    except BaseException as exc:  # the value does not pickle (or is nested too deeply)
        shown = f"{type(value).__name__}: {value}" if kind == "error" else "the result"
        conn.send(("error", _RemoteError(f"{shown[:500]} could not be sent back: {exc!r}"[:800])))


class _Worker:
    def __init__(self, preload: str | None) -> None:
        self.conn, child = _SPAWN.Pipe()
        self.process: BaseProcess = _SPAWN.Process(
            target=_worker_main, args=(child, preload, os.getpid()), daemon=True
        )
        self.process.start()
        child.close()
        self.jobs = 0
        self.ready = False
        # Held by whoever uses the worker: a job's thread for the whole job, the monitor for an
        # instant. Two readers of one pipe would steal each other's messages.
        self.lock = threading.Lock()
        self._closing = threading.Lock()

    @property
    def alive(self) -> bool:
        return not self.conn.closed and self.process.is_alive()

    def wait_ready(self, timeout: float) -> None:
        if not self.ready:
            if not self.conn.poll(timeout):
                raise WorkerCrashed("a validation worker did not start in time")
            self.conn.recv()
            self.ready = True

    def poll_ready(self) -> None:
        """Note a finished start without waiting (the caller holds `lock`)."""
        if not self.ready and self.conn.poll(0):
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


class _Ticket:
    """One call of `run`: which worker holds it, and whether its caller gave up on it."""

    def __init__(self) -> None:
        self.cancelled = False
        self.worker: _Worker | None = None
        self._lock = threading.Lock()

    def assign(self, worker: _Worker | None) -> bool:
        with self._lock:
            if self.cancelled and worker is not None:
                return False
            self.worker = worker
            return True

    def cancel(self) -> int | None:
        """Stop the job: its worker is killed (the job's thread replaces it). Returns its pid."""
        with self._lock:
            self.cancelled = True
            worker = self.worker
        if worker is None:
            return None
        worker.process.kill()
        return worker.process.pid


class WorkerPool:
    """`size` worker processes; jobs beyond them wait, up to `max_queue` waiting (then 503).

    A monitor thread looks at idle workers every `monitor_s` seconds: a dead one is replaced
    before a job is sent to it, and a replacement's finished start is noted for `usable`."""

    def __init__(
        self,
        size: int,
        *,
        max_jobs_per_worker: int | None = None,
        max_queue: int = 100,
        start_timeout: float = 120,
        preload: str | None = ENGINES,
        monitor_s: float | None = 1.0,
    ) -> None:
        self.preload = preload
        self.size = size
        self.max_jobs_per_worker = max_jobs_per_worker
        self.max_queue = max_queue
        self.start_timeout = start_timeout
        self.monitor_s = monitor_s
        self.restarts = 0
        self.cancellations = 0
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False
        self._monitor: threading.Thread | None = None
        self._stop_monitor = threading.Event()

    @property
    def queued(self) -> int:
        """Jobs waiting for a free worker."""
        return max(self._pending - self._running, 0)

    @property
    def running(self) -> int:
        return self._running

    def usable(self) -> int:
        """Workers alive and started (idle or busy): what readiness reports."""
        return sum(1 for worker in list(self._all) if worker.ready and worker.alive)

    def start(self) -> None:
        self._closed = False
        self._idle = queue.SimpleQueue()  # a restart must not find the last shutdown's sentinel
        self._threads = ThreadPoolExecutor(
            max_workers=self.size + self.max_queue, thread_name_prefix="datagate-job"
        )
        for _ in range(self.size):
            self._add_worker()
        if self.monitor_s:
            self._stop_monitor.clear()
            self._monitor = threading.Thread(
                target=self._watch, args=(self.monitor_s,), daemon=True, name="datagate-monitor"
            )
            self._monitor.start()

    def _add_worker(self) -> None:
        worker = _Worker(self.preload)
        with self._lock:
            self._all.add(worker)
        self._idle.put(worker)

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        """Stop a worker and start its successor; a worker already retired is left alone (the
        monitor and a job's thread may both find the same dead worker)."""
        with self._lock:
            if worker not in self._all:
                return
            self._all.discard(worker)
        worker.kill() if kill else worker.stop()
        if not self._closed:
            self._add_worker()

    def _replace(self, worker: _Worker) -> None:
        self.restarts += 1
        self._retire(worker, kill=True)

    def _watch(self, every: float) -> None:
        while not self._stop_monitor.wait(every):
            try:
                self.check_workers()
            except Exception:  # the monitor must outlive any one look
                log.exception("worker check failed")

    def check_workers(self) -> None:
        """Replace idle workers that died (killed, out of memory); note finished starts."""
        for worker in list(self._all):
            if not worker.lock.acquire(blocking=False):
                continue  # running a job: its own thread sees a death
            try:
                dead = not worker.alive
                if not dead:
                    try:
                        worker.poll_ready()
                    except (EOFError, OSError):
                        dead = True
            finally:
                worker.lock.release()
            if dead and not self._closed:
                log.warning("idle validation worker %s died; replacing it", worker.process.pid)
                self._replace(worker)

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

        `what` names the job in the messages. Cancelling the awaiting task stops the job: its
        worker is killed and replaced, and its slot is free at once."""
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
        ticket = _Ticket()
        try:
            return await loop.run_in_executor(
                self._threads, self._run_blocking, fn, args, time_limit, what, ticket
            )
        except asyncio.CancelledError:
            pid = ticket.cancel()
            self.cancellations += 1
            log.warning(
                "%s was cancelled by its caller; %s",
                what,
                f"its worker {pid} was stopped" if pid else "it had not started",
            )
            raise
        finally:
            with self._lock:
                self._pending -= 1

    def _take(self) -> _Worker:
        """The next idle worker that is alive, holding its lock; dead ones are replaced."""
        while True:
            worker = self._idle.get()
            if worker is None:  # shutdown woke this waiter: no worker will come back
                self._idle.put(None)
                raise WorkerCrashed("the service is shutting down; the validation did not run")
            worker.lock.acquire()  # the monitor holds it for an instant at most
            with self._lock:
                retired = worker not in self._all
            if retired:  # the monitor replaced it already: its successor is queued
                worker.lock.release()
                continue
            if worker.alive:
                return worker
            worker.lock.release()
            log.warning("validation worker %s found dead; replacing it", worker.process.pid)
            self._replace(worker)

    def _give_back(self, worker: _Worker) -> None:
        worker.lock.release()
        self._idle.put(worker)

    def _run_blocking(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        timeout: float | None,
        what: str,
        ticket: _Ticket,
    ) -> T:
        try:
            # Pickled here, before a worker is taken: a job that cannot be (too deeply nested,
            # not serialisable) is refused without touching any worker.
            payload = ForkingPickler.dumps((fn, args))
        except BaseException as exc:
            raise JobNotSent(
                f"{what} could not be handed to a worker ({type(exc).__name__}): its inputs "
                "are nested too deeply or cannot be serialised"
            ) from exc
        for attempt in (1, 2):
            worker = self._take()
            if not ticket.assign(worker):
                self._give_back(worker)
                raise JobCancelled(f"{what} was cancelled before it started")
            with self._lock:
                self._running += 1
            try:
                result: T = self._on_worker(worker, bytes(payload), timeout, what, ticket)
                return result
            except _WorkerLost as exc:
                # Found dead before the job reached it: the job is not to blame; once more on a
                # fresh worker.
                if attempt == 2:
                    raise WorkerCrashed(
                        "two validation workers died before the job reached them; try again"
                    ) from exc
                log.warning("validation worker died before the job started; retrying once")
            finally:
                ticket.assign(None)
                with self._lock:
                    self._running -= 1
        raise AssertionError("unreachable")

    def _on_worker(
        self, worker: _Worker, payload: bytes, timeout: float | None, what: str, ticket: _Ticket
    ) -> Any:
        """Run one job on `worker` (whose lock the caller holds): the worker is given back or
        replaced whatever happens."""
        try:
            worker.wait_ready(self.start_timeout)
            worker.conn.send_bytes(payload)
        except (EOFError, OSError) as exc:
            self._replace_held(worker)
            raise _WorkerLost(str(exc)) from exc
        except BaseException:
            self._replace_held(worker)
            raise
        started = time.monotonic()
        begun = False  # the worker acknowledged the job: a death from now on is the job's
        try:
            kind, value = self._next_answer(worker, started, timeout, what)
            if kind == "started":
                begun = True
                kind, value = self._next_answer(worker, started, timeout, what)
        except (EOFError, OSError) as exc:
            self._replace_held(worker)
            if ticket.cancelled:
                raise JobCancelled(f"{what} was cancelled by its caller") from exc
            if not begun:
                raise _WorkerLost("the worker died before it acknowledged the job") from exc
            log.error("a validation worker died; replacing it")
            raise WorkerCrashed(
                "the validation worker stopped unexpectedly (out of memory?); "
                "try again or send a smaller dataset"
            ) from exc
        except ValidationTimeout:
            self._replace_held(worker)
            raise
        except BaseException as exc:  # the answer arrived but does not unpickle here
            self._replace_held(worker)
            raise WorkerCrashed(
                f"the answer of {what} could not be read ({type(exc).__name__})"
            ) from exc
        log.debug("job took %.3f s in worker %s", time.monotonic() - started, worker.process.pid)
        worker.jobs += 1
        if self.max_jobs_per_worker and worker.jobs >= self.max_jobs_per_worker:
            self.restarts += 1
            worker.lock.release()
            self._retire(worker, kill=False)
        else:
            self._give_back(worker)
        if kind == "error":
            raise value
        return value

    @staticmethod
    def _next_answer(
        worker: _Worker, started: float, timeout: float | None, what: str
    ) -> tuple[str, Any]:
        left = None if timeout is None else max(timeout - (time.monotonic() - started), 0)
        if not worker.conn.poll(left):
            log.warning("job over its %.0f s limit: stopping its worker", timeout or 0)
            raise ValidationTimeout(f"{what} took longer than {timeout:.0f} s and was stopped")
        kind, value = worker.conn.recv()
        return str(kind), value

    def _replace_held(self, worker: _Worker) -> None:
        worker.lock.release()
        self._replace(worker)

    def shutdown(self) -> None:
        """Stop every worker, then the threads. A job still running is killed: waiting for it
        (up to the job time limit) would hold the process's exit for an hour."""
        self._closed = True
        self._stop_monitor.set()
        if self._monitor is not None:
            self._monitor.join(10)
            self._monitor = None
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
