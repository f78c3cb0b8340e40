"""Browser sign-in: a form that takes an API key once and keeps a read-only session cookie, then
goes back to the page that asked for it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.routes.pages import html
from app.core.security import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    Authenticator,
    LoginThrottle,
    local_next,
)
from app.reports.pages import render_login

router = APIRouter(tags=["login"])

MAX_KEY_CHARS = 512


def login_page(
    message: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    *,
    next_path: str | None = None,
) -> HTMLResponse:
    """The sign-in page, styled and under the pages' CSP; a 4xx shows its message as a problem."""
    response = html(
        render_login(message, next_path=local_next(next_path), problem=status_code >= 400),
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


def asking_page(request: Request) -> str:
    """The path and query of the page a person opened: where the sign-in leads back to."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


@router.api_route(
    "/login",
    methods=["GET", "POST"],
    response_class=HTMLResponse,
    # A browser page, not part of the JSON API. One route for both methods, so a 405 names both
    # in its Allow header.
    include_in_schema=False,
)
async def login(request: Request) -> Response:
    """GET: the form. POST: check the key; keep a session cookie (not the key), then go to
    `next` when it is a local path, else /reports."""
    if request.method != "POST":
        return login_page(
            "Enter an API key to read reports in this browser.",
            next_path=request.query_params.get("next"),
        )
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    async with request.form(max_files=0, max_fields=4, max_part_size=4096) as form:
        key, asked = form.get("key"), form.get("next")
    next_path = local_next(asked if isinstance(asked, str) else None)
    # Refused before the key is looked at: a locked-out address learns nothing from its guesses.
    wait_s = throttle.retry_after(address)
    if wait_s is not None:
        return login_page(
            f"Too many failed sign-ins from this address; try again in {wait_s} s.",
            status_code=429,
            headers={"Retry-After": str(wait_s)},
            next_path=next_path,
        )
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        return login_page("Enter an API key.", status_code=422, next_path=next_path)
    auth: Authenticator = request.app.state.auth
    if auth.disabled:
        return RedirectResponse(next_path, status_code=303)
    if auth.scope_of(key.strip()) is None:
        throttle.failed(address)
        return login_page("That API key is not valid.", status_code=401, next_path=next_path)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth.issue_session(key.strip()),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        # Behind a TLS proxy the scheme is https once uvicorn trusts its forwarded headers.
        secure=request.url.scheme == "https",
    )
    return response
