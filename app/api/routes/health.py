"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app.api.deps import MetricsDep, ReadAccess, SettingsDep, StoreDep, SuitesDep
from app.core.metrics import CONTENT_TYPE
from app.ingest.references import connection_states

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and suites are loaded")
def readyz(store: StoreDep, suites: SuitesDep, settings: SettingsDep) -> JSONResponse:
    checks: dict[str, Any] = {"suites_loaded": len(suites.names()), "suites_broken": suites.errors}
    try:
        store.ping()
        checks["database"] = "ok"
        ready = True
    except Exception as exc:  # any driver error means "not ready", never a crash
        checks["database"] = f"unreachable: {type(exc).__name__}"
        ready = False
    # SQL connections as last checked (no query here): a refused one makes the replica unready.
    connections = connection_states(settings)
    if connections:
        checks["sql_connections"] = connections
        ready = ready and not any(s.startswith("refused") for s in connections.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics", summary="Prometheus metrics", dependencies=[ReadAccess], include_in_schema=False
)
def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE)
