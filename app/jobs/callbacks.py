"""Completion callbacks: POST a signed report summary to a URL the operator allows."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from urllib.parse import urlsplit

import httpx

from app.core.errors import Forbidden, InvalidRequest
from app.core.security import origin_of, parse_callback_origins
from app.reports.model import Report

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Datagate-Signature"


def sign(body: bytes, secret: str) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def summary_body(report: Report) -> bytes:
    return json.dumps(
        {
            "id": report.id,
            "status": report.status,
            "success": report.success,
            "summary": report.summary.model_dump(),
            "dataset": report.dataset.name,
            "suite": report.suite.name if report.suite else None,
            "error": report.error,
            "report_url": report.report_url,
        },
        separators=(",", ":"),
    ).encode()


class CallbackSender:
    def __init__(
        self,
        allowed: str,
        secret: str,
        *,
        attempts: int = 5,
        first_delay_s: float = 0.5,
    ) -> None:
        self.allowed = parse_callback_origins(allowed)
        self.secret = secret
        self.attempts = attempts
        self.first_delay_s = first_delay_s
        self._tasks: set[asyncio.Task[None]] = set()

    def check(self, url: str) -> str:
        """Refuse a callback URL that is not http(s) (422) or whose scheme, host and port the
        operator has not listed (403)."""
        origin = origin_of(url)
        if origin is None:
            raise InvalidRequest(f"callback_url {url[:200]!r} must be an http(s) URL with a host")
        if urlsplit(url).username is not None:
            raise InvalidRequest("callback_url must not carry credentials (user@host)")
        if origin not in self.allowed:
            scheme, host, port = origin
            allowed = ", ".join(f"{s}://{h}:{p}" for s, h, p in sorted(self.allowed))
            raise Forbidden(
                f"callback_url {scheme}://{host}:{port} is not an allowed callback origin "
                f"(DATAGATE_CALLBACK_HOSTS: {allowed or 'none configured'})"
            )
        return url

    def send(self, url: str, report: Report) -> None:
        task = asyncio.create_task(self._deliver(url, summary_body(report)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes) -> None:
        headers = {"content-type": "application/json"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        problem = await post_with_retries(
            url,
            body,
            headers,
            attempts=self.attempts,
            first_delay_s=self.first_delay_s,
            label=f"callback to {url}",
        )
        if problem is not None:
            log.error("callback to %s given up: %s", url, problem)


async def post_with_retries(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    attempts: int,
    first_delay_s: float,
    label: str,
    timeout_s: float = 10,
) -> str | None:
    """POST `body`, retrying 5xx, 429 and network errors with doubling delays. Returns None once
    a 2xx answers, else why it was not delivered. `label` names the target in logs (never a
    secret URL)."""
    delay = first_delay_s
    problem = "not attempted"
    # A redirect would lead the signed POST past the allow-list: a 3xx ends the delivery.
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return None
                problem = f"status {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    return problem  # the receiver refuses it (or redirects): retrying won't help
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            log.warning("%s failed (%s), attempt %d", label, problem, attempt)
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay *= 2
    return f"{problem} after {attempts} attempts"
