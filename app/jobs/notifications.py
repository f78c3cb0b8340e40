"""Operator-configured notifications (DATAGATE_NOTIFY): every report's verdict, sync or async, to
signed webhooks and Slack-compatible incoming webhooks, and (DATAGATE_OPENLINEAGE_URL) as an
OpenLineage run event; in the background and never in the way."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

from app.core.config import NotifyEvent, NotifyTarget
from app.core.metrics import Metrics
from app.jobs.callbacks import SIGNATURE_HEADER, post_with_retries, sign, summary_body
from app.jobs.lineage import LineageTarget, event_body
from app.reports.check_text import observed_text, pairs_text
from app.reports.model import Report

log = logging.getLogger(__name__)
EVENT_HEADER = "X-Datagate-Event"
# Deliveries in flight at most: a dead receiver and a busy service must not pile up tasks
# without end; past this, a notification is counted undelivered at once.
MAX_PENDING = 1000
# Failed checks named in a Slack message; the report page has the rest.
SLACK_CHECKS = 10


def report_event(report: Report) -> NotifyEvent:
    """The one event a report raises: its verdict, with `warned` for a pass that has warnings."""
    if report.status == "passed" and report.summary.warned:
        return "warned"
    return report.status


def target_label(target: NotifyTarget | LineageTarget) -> str:
    """How logs name a target: kind and origin only, since the URL's path may be its secret."""
    if isinstance(target, LineageTarget):
        what, url = "openlineage event", target.url
    else:
        what, url = f"{target.kind} notification", target.url.get_secret_value()
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{what} to {parts.scheme}://{parts.hostname}{port}"


def target_kind(target: NotifyTarget | LineageTarget) -> str:
    """The `kind` label of datagate_notifications_total."""
    return "openlineage" if isinstance(target, LineageTarget) else target.kind


def slack_escape(text: str) -> str:
    """Slack's rule for message text: &, < and > escaped, so that a dataset or column name
    cannot forge a link (<https://...|text>) or a mention (<!channel>)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(report: Report) -> bytes:
    """A Slack incoming-webhook message (also read by Mattermost and Rocket.Chat): verdict,
    dataset, suite, counts, the failed checks with expected vs observed, the report link."""
    s = report.summary
    suite = f", suite `{slack_escape(report.suite.name)}`" if report.suite else ""
    lines = [
        f"*datagate: {report_event(report).upper()}* `{slack_escape(report.dataset.name)}` "
        f"({report.dataset.rows} rows){suite}",
        f"{s.failed} failed, {s.warned} warned, {s.errored} errors, {s.passed} passed "
        f"of {s.evaluated} checks",
    ]
    shown = [c for c in report.checks if c.outcome in ("failed", "error")]
    for check in shown[:SLACK_CHECKS]:
        column = f" `{check.column}`" if check.column else ""
        lines.append(
            slack_escape(
                f"- {check.outcome}: {check.name}{column}: expected "
                f"{pairs_text(check.expected, skip=('column',))}; observed {observed_text(check)}"
            )
        )
    if len(shown) > SLACK_CHECKS:
        lines.append(f"... and {len(shown) - SLACK_CHECKS} more")
    if report.error:
        lines.append(slack_escape(f"error: {report.error}"))
    url = report.report_url or ""
    if url.startswith(("http://", "https://")):
        lines.append(f"<{slack_escape(url)}|Open the report>")
    elif url:
        lines.append(f"report: {slack_escape(url)} (set DATAGATE_PUBLIC_URL for a link)")
    return json.dumps({"text": "\n".join(lines)}, ensure_ascii=False).encode()


class Notifier:
    """One per app. `send` returns at once; deliveries run as tasks on the running loop.

    `lineage`, when the operator configured a collector, is sent every report, whatever its
    verdict: lineage records each run, not only the alarming ones."""

    def __init__(
        self,
        targets: list[NotifyTarget],
        secret: str,
        metrics: Metrics,
        *,
        lineage: LineageTarget | None = None,
        attempts: int = 5,
        first_delay_s: float = 0.5,
        timeout_s: float = 10,
    ) -> None:
        self.targets = targets
        self.secret = secret
        self.metrics = metrics
        self.lineage = lineage
        self.attempts = attempts
        self.first_delay_s = first_delay_s
        self.timeout_s = timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, report: Report) -> None:
        """Start a delivery to every target whose events include the report's. Never raises:
        a notification must not fail the validation it reports."""
        event = report_event(report)
        chosen: list[NotifyTarget | LineageTarget] = [t for t in self.targets if event in t.events]
        if self.lineage is not None:
            chosen.append(self.lineage)
        for target in chosen:
            try:
                if len(self._tasks) >= MAX_PENDING:
                    raise RuntimeError(f"{MAX_PENDING} notifications already in flight")
                task = asyncio.get_running_loop().create_task(self._deliver(target, event, report))
            except Exception as exc:
                self._undelivered(target, report, str(exc))
                continue
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _request(
        self, target: NotifyTarget | LineageTarget, event: NotifyEvent, report: Report
    ) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and headers of one delivery."""
        if isinstance(target, LineageTarget):
            return target.url, event_body(report, target.namespace), target.headers()
        headers = {"content-type": "application/json"}
        if target.kind == "slack":
            body = slack_body(report)
        else:
            body = summary_body(report)
            headers[EVENT_HEADER] = event
            if self.secret:
                headers[SIGNATURE_HEADER] = sign(body, self.secret)
        return target.url.get_secret_value(), body, headers

    async def _deliver(
        self, target: NotifyTarget | LineageTarget, event: NotifyEvent, report: Report
    ) -> None:
        label = target_label(target)
        try:
            url, body, headers = self._request(target, event, report)
            problem = await post_with_retries(
                url,
                body,
                headers,
                attempts=self.attempts,
                first_delay_s=self.first_delay_s,
                label=label,
                timeout_s=self.timeout_s,
            )
        except Exception as exc:
            problem = f"{type(exc).__name__} building or sending it"
        if problem is None:
            self.metrics.notifications.labels(target_kind(target), "sent").inc()
        else:
            self._undelivered(target, report, problem)

    def _undelivered(
        self, target: NotifyTarget | LineageTarget, report: Report, problem: str
    ) -> None:
        self.metrics.notifications.labels(target_kind(target), "undelivered").inc()
        log.error(
            "%s of report %s undelivered: %s",
            target_label(target),
            report.id,
            problem,
            extra={"report_id": report.id},
        )
