"""The `datagate` command: `serve` runs the service; `validate` gates a pipeline step on a dataset;
`suites` lists, shows, infers and checks suites. Exit codes: 0 passed, 1 failed, 2 error."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import uvicorn

from app.reports.check_text import observed_text, pairs_text
from app.reports.model import CheckResult, Report

if TYPE_CHECKING:
    from app.core.config import Settings

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

# `suites infer` options: InferenceOptions' fields (app/checks/inference.py), named here so the
# CLI starts without importing pandas; tests/test_cli.py checks the two agree.
INFER_OPTIONS = (
    "false_alarm_rate",
    "row_count",
    "row_count_min",
    "row_count_max",
    "datetime_upper",
    "tail_share",
    "max_set_size",
    "unique_min_rows",
)
# Uploads at least this large are submitted as jobs and polled, so that no proxy or load
# balancer idle timeout cuts a validation that takes minutes.
ASYNC_FROM_BYTES = 50 * 1024 * 1024


class UsageError(Exception):
    """The command line cannot be carried out as given; exit 2 with the message."""


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind the service's port before anything slow starts, so a busy port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn binds: a restarted service may reuse the port its predecessor left.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve(args: argparse.Namespace) -> int:
    from app.core.config import Settings
    from app.core.logging import configure_logging
    from app.core.security import UnsafeConfiguration, check_startup

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if args.workers is not None:
        overrides["workers"] = args.workers
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    try:
        check_startup(settings, settings.host)
    except UnsafeConfiguration as exc:
        print(f"datagate: {exc}", file=sys.stderr)
        return 2
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        print(
            f"datagate: cannot listen on {settings.host}:{settings.port}: {exc.strerror} "
            "(is another datagate running there?); choose another port with --port or "
            "DATAGATE_PORT",
            file=sys.stderr,
        )
        return 2
    # Imported once the port is ours: the app's imports take seconds.
    from app.main import create_app

    config = uvicorn_config(create_app(settings), settings)
    GracefulServer(config).run(sockets=[sock])
    return 0


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How `datagate serve` runs `app` under uvicorn."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: any local client could
        # then pick its own address for the wrong-key throttle. Only the configured proxy.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


class GracefulServer(uvicorn.Server):
    """uvicorn's server, but a SIGTERM that ended in a clean shutdown exits 0.

    uvicorn re-raises the signal after shutting down, so the process would die of it (143):
    orchestrators and tests could not tell a clean stop from a kill.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


# --- progress on stderr ------------------------------------------------------------------------


class Progress:
    """A one-line progress display on stderr, only on a terminal and never in CI logs."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = self.stream.isatty() and not os.environ.get("CI")
        self.enabled = enabled
        self._last = 0.0
        self._shown = False

    def upload(self, sent: int, total: int | None) -> None:
        if not total:
            return
        done = min(sent / total, 1.0)
        bar = "#" * int(done * 30)
        self._line(f"uploading [{bar:<30}] {done:4.0%} {_size(sent)}/{_size(total)}", done >= 1)

    def waiting(self, status: str, elapsed: float) -> None:
        self._line(f"validation {status}, {elapsed:4.0f} s", status in ("done", "error"))

    def _line(self, text: str, final: bool) -> None:
        now = time.monotonic()
        # Redraw at most ten times a second: a fast upload would otherwise flood the terminal.
        if not self.enabled or (not final and now - self._last < 0.1):
            return
        self._last = now
        self.stream.write(f"\r\x1b[2K{text}")
        self._shown = True
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


# --- the summary a person reads ---------------------------------------------------------------


def gate_exit_code(report: Report, fail_on: str = "failure") -> int:
    """0 passed, 1 failed (warned too with fail_on=warning), 2 when checks could not run."""
    if report.status == "error":
        return EXIT_ERROR
    if report.status == "failed":
        return EXIT_FAILED
    if fail_on == "warning" and report.summary.warned:
        return EXIT_FAILED
    return EXIT_PASSED


def _check_lines(check: CheckResult, mark: str) -> list[str]:
    where = f" column={check.column}" if check.column else ""
    return [
        f"  {mark} [{check.category}] {check.name}{where} ({check.severity})",
        f"      expected: {pairs_text(check.expected, skip=('column',))}",
        f"      observed: {observed_text(check)}",
    ]


def summary_text(report: Report, fail_on: str = "failure") -> str:
    """The compact summary: verdict, counts, each failed (and warned) check, the report URL."""
    code = gate_exit_code(report, fail_on)
    verdict = {EXIT_PASSED: "PASSED", EXIT_FAILED: "FAILED", EXIT_ERROR: "ERROR"}[code]
    if code == EXIT_FAILED and report.status == "passed":
        verdict = "FAILED (warnings, --fail-on warning)"
    suite = ""
    if report.suite:
        suite = f" against suite {report.suite.name} ({report.suite.sha256[:12]})"
    s = report.summary
    lines = [
        f"datagate: {verdict}  {report.dataset.name} ({report.dataset.rows} rows){suite}",
        f"  checks: {s.evaluated} evaluated, {s.passed} passed, {s.failed} failed, "
        f"{s.warned} warned, {s.skipped} skipped, {s.errored} errors",
    ]
    for outcome, mark in (("failed", "x"), ("error", "E"), ("warned", "!")):
        for check in (c for c in report.checks if c.outcome == outcome):
            lines.extend(_check_lines(check, mark))
    if report.error:
        lines.append(f"  error: {report.error}")
    if report.report_url:
        lines.append(f"  report: {report.report_url}")
    return "\n".join(lines)


# --- validate ---------------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Roles and thresholds as the request carries them."""
    options: dict[str, Any] = {}
    for key in ("label", "datetime", "index", "dataset_name", "format"):
        if getattr(args, key, None):
            options[key] = getattr(args, key)
    for key in ("categorical", "features"):
        if getattr(args, key, None):
            options[key] = [c.strip() for c in getattr(args, key).split(",") if c.strip()]
    if getattr(args, "thresholds", None) or getattr(args, "drift_alpha", None):
        from app.api.routes.validations import request_thresholds
        from app.core.errors import DatagateError

        alpha = {"drift_alpha": args.drift_alpha} if getattr(args, "drift_alpha", None) else {}
        try:
            options["thresholds"] = request_thresholds(getattr(args, "thresholds", None), alpha)
        except DatagateError as exc:
            flag = "--drift-alpha" if "drift_alpha" in exc.message else "--thresholds"
            raise UsageError(f"{flag}: {exc.message}") from exc
    per_check = _per_check(getattr(args, "per_check", None), getattr(args, "severity", None))
    if per_check:
        options["per_check"] = per_check
    return options


def _per_check(raw: str | None, severities: list[str] | None) -> dict[str, Any]:
    """`--per-check JSON` with each `--severity CHECK[:COLUMN]=LEVEL` merged into it.

    Only the shape is read here; the service checks names, options and values (a 422 that
    names them), so the CLI and the API refuse the same things.
    """
    from app.api.routes.validations import request_per_check
    from app.core.errors import DatagateError

    try:
        per_check = request_per_check(raw)
    except DatagateError as exc:
        raise UsageError(f"--per-check: {exc.message}") from exc
    for given in severities or []:
        target, sep, level = given.partition("=")
        check, _, column = target.partition(":")
        if not sep or not check or not level:
            raise UsageError(
                f"--severity {given!r}: expected CHECK=LEVEL or CHECK:COLUMN=LEVEL, "
                "e.g. DataDuplicates=critical"
            )
        entry = per_check.setdefault(check, {})
        if not isinstance(entry, dict):
            raise UsageError(f"--per-check: {check} must be an object")
        if column:
            entry.setdefault("columns", {}).setdefault(column, {})["severity"] = level
        else:
            entry["severity"] = level
    return per_check


def _server_url(args: argparse.Namespace) -> str:
    from app.client import server_url

    return server_url(args.server)


def _local_bytes(*values: str | None) -> int:
    return sum(Path(v).stat().st_size for v in values if v and Path(v).is_file())


def _validate_remote(args: argparse.Namespace, progress: Progress) -> Report:
    from app.client import DatagateClient

    options = _options(args)
    if args.reference:
        options["reference"] = args.reference
    asynchronous = args.mode == "async" or (
        args.mode is None and _local_bytes(args.data, args.reference) >= ASYNC_FROM_BYTES
    )
    with DatagateClient(_server_url(args), api_key=args.api_key) as client:
        if not asynchronous:
            return client.validate(
                args.data, suite=args.suite, on_upload=progress.upload, **options
            )
        job = client.submit(args.data, suite=args.suite, on_upload=progress.upload, **options)
        progress.close()
        print(f"datagate: queued job {job.id}; status at {job.status_url}", file=sys.stderr)
        return client.wait_for(
            job.id, timeout=args.timeout, on_wait=lambda j, t: progress.waiting(j.status, t)
        )


def local_data_input(path: str, fmt: str | None, name: str | None = None) -> Any:
    """A DataInput for a local file, as the service builds one for an upload."""
    from app.checks.runner import DataInput
    from app.ingest.formats import detect_format

    file = Path(path.removeprefix("file://"))
    if not file.is_file():
        raise UsageError(f"--local reads local files only; {path!r} is not a file here")
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return DataInput(
        path=file,
        format=detect_format(file.name, None, fmt),
        name=name or file.name,
        sha256=digest.hexdigest(),
        bytes=file.stat().st_size,
    )


def validate_locally(
    data: str,
    *,
    suite: str | None,
    reference: str | None = None,
    expectations_dir: Path | None = None,
    options: dict[str, Any] | None = None,
    artifacts_dir: Path | None = None,
) -> Report:
    """Run the service's engines in this process on local files: the report the server gives.
    With `artifacts_dir`, files kept with the report (failing rows) go under its id there."""
    from app.api.routes.validations import request_roles
    from app.checks.expectations import SuiteRegistry
    from app.checks.runner import ValidationJob, run_validation
    from app.checks.service import new_report_id
    from app.core.config import Settings

    settings = Settings()
    options = dict(options or {})
    folder = expectations_dir or settings.expectations_dir
    registry = SuiteRegistry.from_directory(folder)
    fields = {
        key: ",".join(value) if isinstance(value, list) else str(value)
        for key, value in options.items()
        if key in ("label", "datetime", "index", "categorical", "features")
    }
    job = ValidationJob(
        id=new_report_id(),
        data=local_data_input(data, options.get("format"), options.get("dataset_name")),
        suite=registry.get(suite) if suite else None,
        reference=local_data_input(reference, None) if reference else None,
        roles=request_roles(fields),
        thresholds=options.get("thresholds") or {},
        per_check=options.get("per_check") or {},
        max_rows=settings.max_rows,
        sample_values=settings.sample_values,
        max_failing_rows=settings.max_failing_rows,
        artifacts_dir=artifacts_dir,
    )
    return run_validation(job)


def _save_failing_rows(report: Report, args: argparse.Namespace, kept: Path | None) -> None:
    """--failing-rows DIR: each failed check's rows, from the local run's folder `kept` or
    downloaded from the server; one line per file on stderr."""
    from app.reports.failing_rows import checks_with_rows, csv_bytes

    folder = Path(args.failing_rows)
    fmt = args.failing_rows_format
    if kept is None:
        with _client(args) as client:
            written = client.save_failing_rows(report, folder, format=fmt)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for _, info in checks_with_rows(report):
            source = kept / report.id / info["artifact"]
            path = folder / f"failing-rows-{info['check']}.{fmt}"
            path.write_bytes(csv_bytes(source) if fmt == "csv" else source.read_bytes())
            written.append(path)
    for (check, info), path in zip(checks_with_rows(report), written, strict=True):
        cut = f" (first {info['rows']} of {info['total']})" if info.get("truncated") else ""
        print(
            f"datagate: {check.name} on {check.column or 'the table'}: {info['rows']} failing "
            f"rows{cut} in {path}",
            file=sys.stderr,
        )
    if not written:
        print("datagate: no failed check kept failing rows", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    if args.mlflow:
        from app.reports.mlflow_run import MlflowUnavailable, import_mlflow

        try:
            import_mlflow()  # before the validation: a missing extra is a usage error
        except MlflowUnavailable as exc:
            raise UsageError(str(exc)) from exc
    progress = Progress(enabled=False if args.json else None)
    with contextlib.ExitStack() as stack:
        kept: Path | None = None
        try:
            if args.local:
                if args.failing_rows:
                    kept = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                report = validate_locally(
                    args.data,
                    suite=args.suite,
                    reference=args.reference,
                    expectations_dir=Path(args.expectations) if args.expectations else None,
                    options=_options(args),
                    artifacts_dir=kept,
                )
            else:
                report = _validate_remote(args, progress)
        finally:
            progress.close()
        if args.failing_rows:
            _save_failing_rows(report, args, kept)
    if args.output:
        Path(args.output).write_text(report.model_dump_json(indent=2) + "\n")
    if args.junit:
        from app.reports.junit import render

        Path(args.junit).write_bytes(render(report, warnings_fail=args.fail_on == "warning"))
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(summary_text(report, args.fail_on))
    if args.mlflow:
        return _log_to_mlflow(report) or gate_exit_code(report, args.fail_on)
    return gate_exit_code(report, args.fail_on)


def _log_to_mlflow(report: Report) -> int:
    """Log the report to MLflow; EXIT_ERROR (and why, on stderr) when that fails, else 0.

    A pipeline that asked for the run to hold the report must not pass with the run lacking it.
    """
    from app.reports.mlflow_run import log_report

    try:
        logged = log_report(report)
    except Exception as exc:  # mlflow's errors (no server, refused key) have no common base
        print(f"datagate: could not log the report to MLflow: {exc}", file=sys.stderr)
        return EXIT_ERROR
    how = "started run" if logged.started else "run"
    print(f"datagate: logged to MLflow {how} {logged.run_id}", file=sys.stderr)
    return 0


# --- suites -----------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Any:
    from app.client import DatagateClient

    return DatagateClient(_server_url(args), api_key=args.api_key)


def _suites_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        listing = client.list_suites()
    if args.json:
        print(json.dumps(listing, indent=2))
        return EXIT_PASSED
    print(f"{'name':<32} {'origin':<6} {'checks':>6}  sha256")
    for item in listing["items"]:
        print(
            f"{item['name']:<32} {item['origin']:<6} {item['expectations']:>6}  "
            f"{item['sha256'][:12]}"
        )
    for broken in listing["broken"]:
        print(f"{broken['name']:<32} BROKEN  {broken['error']}")
    return EXIT_PASSED


def _suites_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        detail = client.get_suite(args.name)
    print(json.dumps(detail if args.json else detail["definition"], indent=2))
    return EXIT_PASSED


def _suites_infer(args: argparse.Namespace) -> int:
    if args.local:
        from app.checks.inference import infer_suite, inference_options
        from app.core.config import Settings
        from app.ingest.formats import read_dataframe

        data = local_data_input(args.data, args.format)
        frame = read_dataframe(data.path, data.format, max_rows=Settings().max_rows)
        suite = infer_suite(frame, args.name, options=inference_options(_infer_options(args)))
    else:
        with _client(args) as client:
            suite = client.infer_suite(args.data, name=args.name, options=_infer_options(args))
    text = json.dumps(suite, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(
            f"datagate: wrote suite {suite['name']} ({len(suite['expectations'])} expectations) "
            f"to {args.output}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    if args.save:
        with _client(args) as client:
            saved = client.put_suite(suite["name"], suite)
        print(f"datagate: saved suite {saved['name']} ({saved['sha256'][:12]})", file=sys.stderr)
    return EXIT_PASSED


def _infer_options(args: argparse.Namespace) -> dict[str, str]:
    """The inference options given on the command line, as the server's form fields."""
    given: dict[str, str] = {}
    for option in INFER_OPTIONS:
        value = getattr(args, option, None)
        if value is not None:
            given[option] = ("true" if value else "false") if isinstance(value, bool) else value
    return given


def _suites_check(args: argparse.Namespace) -> int:
    from app.checks.suite_file import check_suite_file

    problems = check_suite_file(Path(args.file), name=args.name, engine=not args.shape)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EXIT_FAILED
    print(f"datagate: {args.file} is a valid suite")
    return EXIT_PASSED


# --- the parser -------------------------------------------------------------------------------


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", help="service URL (default DATAGATE_URL, else http://127.0.0.1:8000)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("DATAGATE_API_KEY"),
        help="API key, sent as Authorization: Bearer (default DATAGATE_API_KEY)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datagate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (default DATAGATE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default DATAGATE_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="validation worker processes")
    serve.set_defaults(handler=_serve)

    validate = commands.add_parser(
        "validate",
        help="validate a dataset; exit 0 passed, 1 failed, 2 error",
        description="Validate DATA (a local file, s3://..., file://... or connection:table) "
        "against a suite. Exit 0 passed, 1 failed, 2 usage or service error.",
    )
    validate.add_argument("data", help="dataset: local file, URI or connection:table")
    validate.add_argument("--reference", help="reference (training) dataset")
    validate.add_argument("--suite", help="suite name")
    validate.add_argument("--label", help="label column")
    validate.add_argument("--datetime", help="datetime column")
    validate.add_argument("--index", help="index column")
    validate.add_argument("--categorical", help="comma-separated categorical columns")
    validate.add_argument("--features", help="comma-separated feature columns")
    validate.add_argument("--thresholds", help='JSON object, e.g. {"max_feature_drift": 0.3}')
    validate.add_argument(
        "--drift-alpha",
        dest="drift_alpha",
        help="FeatureDrift and LabelDrift: family-wise significance level (default 0.01)",
    )
    validate.add_argument(
        "--per-check",
        dest="per_check",
        metavar="JSON",
        help='severity and thresholds per check and column, e.g. {"FeatureDrift": '
        '{"columns": {"income": {"max_feature_drift": 0.5}}}} (docs/severity.md)',
    )
    validate.add_argument(
        "--severity",
        action="append",
        metavar="CHECK[:COLUMN]=LEVEL",
        help="critical, warning or info for a check (or one column of it); repeatable, "
        "e.g. --severity DataDuplicates=critical",
    )
    validate.add_argument("--format", help="dataset format when the file name does not say")
    validate.add_argument("--dataset-name", help="name shown in the report")
    validate.add_argument("--output", "-o", help="write the report JSON to this file")
    validate.add_argument("--json", action="store_true", help="print the report JSON instead")
    validate.add_argument("--junit", metavar="FILE", help="write the report as JUnit XML (for CI)")
    validate.add_argument(
        "--failing-rows",
        metavar="DIR",
        help="save each failed check's failing rows in DIR as failing-rows-<check>.parquet",
    )
    validate.add_argument(
        "--failing-rows-format",
        choices=("parquet", "csv"),
        default="parquet",
        help="format of the --failing-rows files (csv cells are spreadsheet-safe)",
    )
    validate.add_argument(
        "--mlflow",
        action="store_true",
        help="log the report to the active MLflow run, or a new one (MLFLOW_TRACKING_URI; "
        "needs datagate[mlflow])",
    )
    validate.add_argument(
        "--fail-on",
        choices=("failure", "warning"),
        default="failure",
        help="warning: warned checks fail the gate too",
    )
    validate.add_argument(
        "--local", action="store_true", help="run the engines in this process, no server"
    )
    validate.add_argument(
        "--expectations", help="suites folder for --local (default DATAGATE_EXPECTATIONS_DIR)"
    )
    mode = validate.add_mutually_exclusive_group()
    mode.add_argument(
        "--async",
        dest="mode",
        action="store_const",
        const="async",
        help=f"submit a job and poll it (the default from {_size(ASYNC_FROM_BYTES)} of upload)",
    )
    mode.add_argument(
        "--sync", dest="mode", action="store_const", const="sync", help="wait on one request"
    )
    validate.add_argument(
        "--timeout", type=float, default=3600, help="seconds to wait for an async job"
    )
    _add_server(validate)
    validate.set_defaults(handler=_validate)

    suites = commands.add_parser("suites", help="list, show, infer and check suites")
    suite_commands = suites.add_subparsers(dest="suites_command", required=True)
    listing = suite_commands.add_parser("list", help="suites on the server")
    listing.add_argument("--json", action="store_true")
    _add_server(listing)
    listing.set_defaults(handler=_suites_list)
    show = suite_commands.add_parser("show", help="one suite's definition")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="with origin and hash")
    _add_server(show)
    show.set_defaults(handler=_suites_show)
    infer = suite_commands.add_parser("infer", help="propose a suite from a reference dataset")
    infer.add_argument("data", help="reference dataset (local file)")
    infer.add_argument("--name", required=True, help="suite name")
    infer.add_argument("--output", "-o", help="write the suite here (default stdout)")
    infer.add_argument("--format", help="dataset format when the file name does not say")
    infer.add_argument("--local", action="store_true", help="infer in this process, no server")
    infer.add_argument("--save", action="store_true", help="PUT the suite to the server too")
    tuning = infer.add_argument_group("inference options (docs/pipelines.md)")
    tuning.add_argument(
        "--false-alarm-rate",
        dest="false_alarm_rate",
        help="chance a clean batch fails the calibrated checks (default 0.01)",
    )
    tuning.add_argument(
        "--no-row-count",
        dest="row_count",
        action="store_false",
        default=None,
        help="propose no row count range",
    )
    tuning.add_argument("--row-count-min", dest="row_count_min", help="fewest rows (default 1)")
    tuning.add_argument("--row-count-max", dest="row_count_max", help="most rows (default none)")
    tuning.add_argument(
        "--datetime-upper",
        dest="datetime_upper",
        action="store_true",
        default=None,
        help="also bound datetime columns from above (for dates that do not grow)",
    )
    tuning.add_argument(
        "--tail-share", dest="tail_share", help="smaller widens numeric bounds (default 1)"
    )
    tuning.add_argument(
        "--max-set-size", dest="max_set_size", help="most distinct values for a set (default 20)"
    )
    tuning.add_argument(
        "--unique-min-rows",
        dest="unique_min_rows",
        help="fewest values for a uniqueness check (default 100)",
    )
    _add_server(infer)
    infer.set_defaults(handler=_suites_infer)
    check = suite_commands.add_parser("check", help="check a suite file offline")
    check.add_argument("file")
    check.add_argument("--name", help="suite name (default the file name without .json)")
    check.add_argument(
        "--shape",
        action="store_true",
        help="check the JSON, its data rules and meta.datagate without building each "
        "expectation in Great Expectations: under a second, for editors and pre-commit hooks",
    )
    check.set_defaults(handler=_suites_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from app.client import DatagateClientError
    from app.core.errors import DatagateError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"datagate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except DatagateClientError as exc:
        print(f"datagate: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except DatagateError as exc:  # --local: the same refusals the service answers 4xx with
        print(f"datagate: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError) as exc:
        print(f"datagate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
