"""A report as JUnit XML, the test-result format CI systems render (GitLab, Jenkins, Azure DevOps,
GitHub test reporters): one test case per check, in the shape of Jenkins' junit-10.xsd."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from app.reports.check_text import observed_text, pairs_text
from app.reports.model import CheckResult, Report

CONTENT_TYPE = "application/xml; charset=utf-8"
# Longest `message` attribute: CI pages show it on one line; the element's text has the rest.
MESSAGE_CHARS = 500

# XML 1.0 cannot carry most control characters, not even escaped: one in a data value seen by a
# check would make the whole file unreadable to the CI's parser.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _case_name(check: CheckResult) -> str:
    return f"{check.name}[{check.column}]" if check.column else check.name


def _detail(check: CheckResult) -> str:
    return (
        f"expected: {pairs_text(check.expected, skip=('column',))}\n"
        f"observed: {observed_text(check)}\n"
        f"severity: {check.severity}, category: {check.category}"
    )


def _add(parent: ET.Element, tag: str, text: str = "", **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attributes.items()})
    if text:
        element.text = xml_text(text)
    return element


def _testcase(suite: ET.Element, check: CheckResult, *, warnings_fail: bool) -> str:
    """Add the check's test case; returns what it counts as: passed, failure, error or skipped."""
    case = _add(
        suite,
        "testcase",
        name=_case_name(check),
        classname=f"datagate.{check.source}.{check.category}",
    )
    detail = _detail(check)
    outcome = check.outcome
    if outcome == "failed" or (outcome == "warned" and warnings_fail):
        message = f"{check.outcome}: expected {pairs_text(check.expected, skip=('column',))}; "
        message += f"observed {observed_text(check)}"
        _add(case, "failure", detail, type=check.outcome, message=_short(message))
        return "failure"
    if outcome == "error":
        details = check.details
        why = str(details.get("error") or details.get("reason") or details.get("message") or "")
        why = why or "the check could not run"
        _add(case, "error", detail, type="error", message=_short(why))
        return "error"
    if outcome == "skipped":
        why = str(check.details.get("message") or check.details.get("reason") or "not applicable")
        _add(case, "skipped", message=_short(why))
        return "skipped"
    if outcome == "warned":
        # A warning does not fail the gate, and JUnit has no warning: the case passes and
        # says so in its output.
        _add(case, "system-out", f"WARNING (severity {check.severity})\n{detail}")
    return "passed"


def render(report: Report, *, warnings_fail: bool = False) -> bytes:
    """The report as a JUnit XML document (UTF-8). A run that ended in error without its checks
    gets one `datagate` test case in error, so that CI shows red rather than an empty suite.

    `warnings_fail` (the CLI's `--fail-on warning`) turns warned checks into failures."""
    dataset = report.dataset.name
    name = f"datagate: {dataset}" + (f" / {report.suite.name}" if report.suite else "")
    seconds = f"{report.duration_ms / 1000:.3f}"
    root = ET.Element("testsuites")
    suite = _add(
        root,
        "testsuite",
        name=name,
        id=report.id,
        timestamp=report.created_at.strftime("%Y-%m-%dT%H:%M:%S"),
        time=seconds,
    )
    properties = _add(suite, "properties")
    shown = {
        "datagate.report_id": report.id,
        "datagate.status": report.status,
        "datagate.dataset": dataset,
        "datagate.rows": str(report.dataset.rows),
        "datagate.suite": report.suite.name if report.suite else "",
        "datagate.report_url": report.report_url or "",
    }
    for key, value in shown.items():
        _add(properties, "property", name=key, value=value)
    counts = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
    for check in report.checks:
        counts[_testcase(suite, check, warnings_fail=warnings_fail)] += 1
    if report.error or (report.status == "error" and counts["error"] == 0):
        case = _add(suite, "testcase", name="datagate", classname="datagate.run")
        why = report.error or "the validation ended in error"
        _add(case, "error", why, type="error", message=_short(why))
        counts["error"] += 1
    tests = sum(counts.values())
    suite.set("tests", str(tests))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    if report.report_url:
        _add(suite, "system-out", f"report: {report.report_url}")
    root.set("name", "datagate")
    root.set("tests", str(tests))
    root.set("failures", str(counts["failure"]))
    root.set("errors", str(counts["error"]))
    root.set("time", seconds)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body
