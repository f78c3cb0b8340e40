"""Dependencies shared by the routes: settings, store, suites, services, access control."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.checks.expectations import SuiteRegistry
from app.checks.service import ValidationService
from app.core.config import Settings
from app.core.metrics import Metrics
from app.core.security import Authenticator, check_origin
from app.jobs.queue import JobQueue
from app.reports.store import ReportStore


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> ReportStore:
    store: ReportStore = request.app.state.store
    return store


def get_suites(request: Request) -> SuiteRegistry:
    suites: SuiteRegistry = request.app.state.suites
    return suites


def get_validations(request: Request) -> ValidationService:
    service: ValidationService = request.app.state.validations
    return service


def get_jobs(request: Request) -> JobQueue:
    jobs: JobQueue = request.app.state.jobs
    return jobs


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def require_read(request: Request) -> None:
    auth: Authenticator = request.app.state.auth
    auth.authorize(request, "read")


def require_write(request: Request) -> None:
    # Before the key: a keyless loopback service is as open to another page's form as a keyed one.
    settings: Settings = request.app.state.settings
    check_origin(request, settings.public_url)
    auth: Authenticator = request.app.state.auth
    auth.authorize(request, "write")


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ReportStore, Depends(get_store)]
SuitesDep = Annotated[SuiteRegistry, Depends(get_suites)]
ValidationsDep = Annotated[ValidationService, Depends(get_validations)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
