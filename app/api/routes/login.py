"""Browser sign-in: a form that takes an API key once and keeps a read-only session cookie."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.security import SESSION_COOKIE, SESSION_TTL_S, Authenticator, LoginThrottle

router = APIRouter(tags=["login"])

MAX_KEY_CHARS = 512

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>datagate: sign in</title></head>
<body><main>
<h1>datagate</h1>
<p>{message}</p>
<form method="post" action="/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main></body></html>
"""


def login_page(
    message: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(message=escape(message)), status_code=status_code, headers=headers
    )


@router.api_route(
    "/login",
    methods=["GET", "POST"],
    response_class=HTMLResponse,
    # A browser page, not part of the JSON API. One route for both methods, so a 405 names both
    # in its Allow header.
    include_in_schema=False,
)
async def login(request: Request) -> Response:
    """GET: the form. POST: check the key; keep a session cookie (not the key), go to /reports."""
    if request.method != "POST":
        return login_page("Enter an API key to read reports in this browser.")
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    # Refused before the key is looked at: a locked-out address learns nothing from its guesses.
    wait_s = throttle.retry_after(address)
    if wait_s is not None:
        return login_page(
            f"Too many failed sign-ins from this address; try again in {wait_s} s.",
            status_code=429,
            headers={"Retry-After": str(wait_s)},
        )
    async with request.form(max_files=0, max_fields=4, max_part_size=4096) as form:
        key = form.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        return login_page("Enter an API key.", status_code=422)
    auth: Authenticator = request.app.state.auth
    if auth.disabled:
        return RedirectResponse("/reports", status_code=303)
    if auth.scope_of(key.strip()) is None:
        throttle.failed(address)
        return login_page("That API key is not valid.", status_code=401)
    response = RedirectResponse("/reports", status_code=303)
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
