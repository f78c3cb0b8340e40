"""The application factory: routers, error handlers, and the lifespan that owns pools and the DB."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.api.deps import ReadAccess
from app.api.routes import health, login, pages, reports, suites, trends, validations
from app.checks.expectations import SUITE_CHECK_SECONDS, SuiteRegistry, suite_problems
from app.checks.service import ValidationService
from app.checks.suite_reload import SuiteFolderWatcher, folder_stamps
from app.checks.suite_safety import suite_limits
from app.checks.suite_store import SuiteCatalog, SuiteStore
from app.checks.workers import WorkerCrashed, WorkerPool
from app.core.body_timeout import BodyTimeoutMiddleware
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker, migrate
from app.core.errors import DatagateError, Unauthorized
from app.core.head_requests import HeadAsGetMiddleware
from app.core.host_guard import HostGuard, HostGuardMiddleware
from app.core.logging import configure_logging, request_id_var
from app.core.metrics import Metrics
from app.core.security import Authenticator
from app.ingest.references import check_connections_at_start
from app.jobs.callbacks import CallbackSender
from app.jobs.dispatcher import Dispatcher
from app.jobs.lineage import LineageTarget
from app.jobs.notifications import Notifier
from app.jobs.queue import JobQueue
from app.reports.store import ReportStore

log = logging.getLogger("datagate")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id_var.get()}},
        status_code=status,
        headers=headers,
    )


def _allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method the OpenAPI schema documents for `path`: a literal path wins over templates
    it also fits (`/v1/suites/infer` is not `/v1/suites/{name}`)."""
    paths = app.openapi().get("paths", {})
    if path in paths:
        return {m.upper() for m in paths[path] if m != "parameters"}
    methods: set[str] = set()
    for template, operations in paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(m.upper() for m in operations if m != "parameters")
    return methods


def _register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DatagateError)
    async def _domain(request: Request, exc: DatagateError) -> Response:
        if exc.status_code == 503:  # a deliberate refusal (queue full), not a fault
            log.warning("%s: %s", exc.code, exc.message)
        elif exc.status_code >= 500:
            log.error("%s: %s", exc.code, exc.message)
        if isinstance(exc, Unauthorized) and request.url.path.startswith("/reports"):
            # A person opening a report link from a pipeline's log gets the sign-in form.
            return login.login_page(
                "Sign in with an API key to read the reports.",
                401,
                next_path=login.asking_page(request),
            )
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None and request.url.path.startswith("/v1/validations"):
            metrics.rejected.labels(exc.code).inc()
        return _error(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _error(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route whose path matched; a path served by
            # several routes (GET, PUT, DELETE /v1/suites/{name}) allows all their methods.
            allowed = _allowed_methods(app, request.url.path)
            if "GET" in allowed:
                allowed.add("HEAD")
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
        return _error(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return _error(500, "internal_error", "internal error; the request id is in the log")


def _safe_count(jobs: JobQueue) -> int:
    try:
        return jobs.queued_count()
    except Exception:  # a scrape must not fail because the database blinked
        return 0


async def _check_suites(registry: SuiteRegistry, pool: WorkerPool) -> None:
    """Have a worker check every loaded suite's expectations; a rejected one is listed broken."""
    suites = registry.list()
    problems = await pool.run(
        suite_problems, suites, time_limit=SUITE_CHECK_SECONDS, what="the suite check"
    )
    for suite in suites:
        if suite.name in problems:
            registry.mark_broken(suite.name, problems[suite.name])
            log.error("suite %s not loaded: %s", suite.name, problems[suite.name])
        else:
            registry.mark_checked(suite)


async def _first_worker(pool: WorkerPool) -> None:
    """Wait until one worker can take a job (the others keep warming up)."""
    deadline = time.monotonic() + pool.start_timeout
    while pool.usable() == 0:
        if time.monotonic() > deadline:
            raise WorkerCrashed(f"no validation worker started in {pool.start_timeout:.0f} s")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def startup_step(what: str) -> Iterator[None]:
    """Log one start-up step with the time it took, so a slow start says where it waits."""
    began = time.monotonic()
    yield
    log.info("start-up: %s in %.2f s", what, time.monotonic() - began)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        started = time.monotonic()
        with startup_step("SQL connections checked"):
            # Before anything starts: a SQL connection whose role can write stops the start.
            await asyncio.to_thread(check_connections_at_start, settings)
        pool = WorkerPool(
            settings.workers,
            max_jobs_per_worker=settings.max_jobs_per_worker,
            max_queue=settings.max_queue,
        )
        # Workers first: they take the longest to start (they import the engines), and they
        # do it while this process migrates the database and reads the suite files.
        with startup_step(f"{settings.workers} validation worker(s) started"):
            pool.start()
        try:
            with startup_step("database migrated"):
                settings.ensure_dirs()
                engine = make_engine(settings.db_url)
                await asyncio.to_thread(migrate, engine)
            with startup_step("suite files read"):
                # The API process reads suites without Great Expectations (it would cost it
                # 150 MiB for this alone); a worker checks their expectations.
                stamps = folder_stamps(settings.expectations_dir)
                registry = SuiteRegistry.from_directory(
                    settings.expectations_dir, check=False, limits=suite_limits(settings)
                )
                # --- tooling: suites PUT through the API live in the database, beside files ---
                registry = SuiteCatalog(registry, SuiteStore(make_sessionmaker(engine)))
                # --- end tooling ---
        except BaseException:
            pool.shutdown()
            raise
        sessions = make_sessionmaker(engine)
        store = ReportStore(sessions)
        jobs = JobQueue(
            sessions, owner=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        metrics = Metrics()
        callbacks = CallbackSender(settings.callback_hosts, settings.callback_secret)
        notifier = Notifier(
            settings.notify,
            settings.callback_secret,
            metrics,
            lineage=LineageTarget.from_settings(settings),
        )
        dispatcher = Dispatcher(settings, jobs, pool, metrics, callbacks, notifier)
        metrics.track(
            queue_depth=lambda: pool.queued + _safe_count(jobs),
            running=lambda: pool.running,
            worker_restarts=lambda: pool.restarts,
        )
        app.state.settings = settings
        app.state.store = store
        app.state.suites = registry
        app.state.pool = pool
        app.state.jobs = jobs
        app.state.metrics = metrics
        app.state.callbacks = callbacks
        app.state.notifier = notifier
        app.state.auth = Authenticator(settings)
        app.state.login_throttle = app.state.auth.throttle
        app.state.validations = ValidationService(
            settings, registry, pool, store, jobs, dispatcher, metrics, notifier
        )
        watcher = SuiteFolderWatcher(settings.expectations_dir, registry, pool, stamps)
        app.state.suite_watcher = watcher
        app.state.starting = "a validation worker is importing the engines"
        tasks: list[asyncio.Task[None]] = []

        async def finish_start() -> None:
            """What needs a worker; until it is done /healthz answers and /readyz says 503."""
            try:
                with startup_step("first validation worker ready (engines imported)"):
                    await _first_worker(pool)
                app.state.starting = "a worker is checking the suites"
                with startup_step("suites checked by a worker"):
                    await _check_suites(registry, pool)
            except DatagateError as exc:
                app.state.starting = f"start-up failed: {exc.message}"
                log.error("start-up failed: %s", exc.message)
                return
            log.info(
                "loaded %d suite(s) from %s and the database; %d broken",
                len(registry.names()),
                settings.expectations_dir,
                len(registry.errors),
            )
            dispatcher.start()
            app.state.starting = None
            log.info("start-up done in %.2f s: ready for validations", time.monotonic() - started)
            if settings.suites_poll_s > 0:
                tasks.append(asyncio.create_task(watcher.watch(settings.suites_poll_s)))

        app.state.startup = asyncio.create_task(finish_start())
        tasks.append(app.state.startup)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await dispatcher.stop()
            pool.shutdown()
            engine.dispose()

    app = FastAPI(
        title="datagate",
        version=__version__,
        description="A data validation gate for machine learning pipelines.",
        lifespan=lifespan,
        # /docs is the pages' own Swagger UI (app/api/routes/pages.py): FastAPI's loads it from
        # a CDN with an inline script, a blank page offline and under the pages' CSP.
        docs_url=None,
        redoc_url=None,
    )
    _register_error_handlers(app)
    # Innermost: the request-id log line still says HEAD; the route (and its auth) sees a GET.
    app.add_middleware(HeadAsGetMiddleware)
    # Added before the request-id middleware, so it sits inside it: the timeout must be raised
    # in the route's own task (BaseHTTPMiddleware would wrap it in an ExceptionGroup -> 500).
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.body_timeout_s)
    # Before any route, inside the request-id middleware (so a refused Host is logged).
    app.add_middleware(HostGuardMiddleware, guard=HostGuard(settings))

    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid[:64])
        started = time.monotonic()
        try:
            response = await call_next(request)
            response.headers["X-Request-ID"] = rid[:64]
            log.info(
                "%s %s %d",
                request.method,
                request.url.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "duration_ms": int((time.monotonic() - started) * 1000),
                },
            )
        finally:
            request_id_var.reset(token)
        return response

    app.include_router(health.router)
    app.include_router(validations.router)
    app.include_router(
        reports.router, dependencies=[ReadAccess], responses={404: {"description": "Not found"}}
    )
    app.include_router(
        suites.router, dependencies=[ReadAccess], responses={404: {"description": "No such suite"}}
    )
    app.include_router(
        trends.router, dependencies=[ReadAccess], responses={404: {"description": "Not found"}}
    )
    # Pages check read access themselves: the stylesheet must load on the 401 page too.
    app.include_router(pages.router)
    app.include_router(login.router)
    return app
