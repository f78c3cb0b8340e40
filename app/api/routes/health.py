"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import StoreDep, SuitesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and suites are loaded")
def readyz(store: StoreDep, suites: SuitesDep) -> JSONResponse:
    checks: dict[str, Any] = {"suites_loaded": len(suites.names()), "suites_broken": suites.errors}
    try:
        store.ping()
        checks["database"] = "ok"
        ready = True
    except Exception as exc:  # any driver error means "not ready", never a crash
        checks["database"] = f"unreachable: {type(exc).__name__}"
        ready = False
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )
