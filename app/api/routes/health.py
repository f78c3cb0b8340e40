"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import MetricsDep, ReadAccess, SettingsDep, StoreDep, SuitesDep
from app.core.metrics import CONTENT_TYPE
from app.ingest.references import connection_states

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up (answers from the moment it listens)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable, suites are loaded and a worker is usable",
    responses={
        503: {
            "description": "Not ready (yet): starting, no usable worker, the database "
            "unreachable or a SQL connection refused; `reason` says which",
            "content": {"application/json": {}},
        }
    },
)
def readyz(
    request: Request, store: StoreDep, suites: SuitesDep, settings: SettingsDep
) -> JSONResponse:
    checks: dict[str, Any] = {"suites_loaded": len(suites.names()), "suites_broken": suites.errors}
    # Suite files changed on disk whose new version was refused: the loaded version still runs.
    if suites.not_reloaded:
        checks["suites_not_reloaded"] = suites.not_reloaded
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
    # A replica whose workers are all dead (killed, out of memory) or still starting would
    # only queue requests: it is taken out of rotation until one is usable again.
    pool = request.app.state.pool
    usable = pool.usable()
    checks["workers"] = {"usable": usable, "size": pool.size}
    if usable == 0:
        ready = False
        checks["reason"] = (
            f"no usable validation worker (0 of {pool.size}): dead or still starting; "
            "dead ones are being replaced"
        )
    starting = getattr(request.app.state, "starting", None)
    if starting:
        ready = False
        checks["reason"] = f"starting: {starting}"
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics", summary="Prometheus metrics", dependencies=[ReadAccess], include_in_schema=False
)
def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE)
