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
        allowed_hosts: list[str],
        secret: str,
        *,
        attempts: int = 5,
        first_delay_s: float = 0.5,
    ) -> None:
        self.allowed_hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}
        self.secret = secret
        self.attempts = attempts
        self.first_delay_s = first_delay_s
        self._tasks: set[asyncio.Task[None]] = set()

    def check(self, url: str) -> str:
        """Refuse a callback URL whose host the operator has not listed (403) or that is not
        http(s) (422)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"callback_url {url!r} must be an http(s) URL with a host")
        if parts.hostname.lower() not in self.allowed_hosts:
            allowed = ", ".join(sorted(self.allowed_hosts)) or "none configured"
            raise Forbidden(
                f"callback host {parts.hostname!r} is not allowed (DATAGATE_CALLBACK_HOSTS: "
                f"{allowed})"
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
        delay = self.first_delay_s
        async with httpx.AsyncClient(timeout=10) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code < 500 and response.status_code != 429:
                        return
                    problem = f"status {response.status_code}"
                except httpx.HTTPError as exc:
                    problem = type(exc).__name__
                log.warning("callback to %s failed (%s), attempt %d", url, problem, attempt)
                if attempt < self.attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
        log.error("callback to %s given up after %d attempts", url, self.attempts)
