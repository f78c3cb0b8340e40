"""Browser sign-in: a form that takes an API key once and keeps it in an HttpOnly cookie."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.security import KEY_COOKIE, Authenticator

router = APIRouter(tags=["login"])

COOKIE_MAX_AGE_S = 12 * 3600

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


def _page(message: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(message=escape(message)), status_code=status_code)


@router.get("/login", response_class=HTMLResponse, summary="The sign-in form for browsers")
async def login_form() -> HTMLResponse:
    return _page("Enter an API key to read reports in this browser.")


@router.post(
    "/login",
    response_class=HTMLResponse,
    summary="Check an API key and keep it in a cookie; redirects to /reports",
    responses={303: {"description": "Signed in"}, 401: {"description": "Unknown key"}},
)
async def login(
    request: Request, key: Annotated[str, Form(min_length=1, max_length=512)]
) -> Response:
    auth: Authenticator = request.app.state.auth
    if auth.disabled:
        return RedirectResponse("/reports", status_code=303)
    if auth.scope_of(key.strip()) is None:
        return _page("That API key is not valid.", status_code=401)
    response = RedirectResponse("/reports", status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        key.strip(),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        # Behind a TLS proxy the scheme is https once uvicorn trusts its forwarded headers.
        secure=request.url.scheme == "https",
    )
    return response
