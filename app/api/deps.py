"""Dependencies shared by the routes: the settings, the report store, the suites, the pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.checks.expectations import SuiteRegistry
from app.checks.workers import WorkerPool
from app.core.config import Settings
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


def get_pool(request: Request) -> WorkerPool:
    pool: WorkerPool = request.app.state.pool
    return pool


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ReportStore, Depends(get_store)]
SuitesDep = Annotated[SuiteRegistry, Depends(get_suites)]
PoolDep = Annotated[WorkerPool, Depends(get_pool)]
