"""Detection benchmark (issue 13, item 7): false alarms on clean splits of real data, recall on
planted defects, each verdict a stored report of the service.

Each split's test part is validated the way a new user would: the suite inferred from the
training part (default InferenceOptions) PUT through the API, the training part sent as
`reference`, the dataset's label (and datetime) as roles, through the FastAPI app in-process
(TestClient, SQLite and folders in a temporary directory). A 4xx is recorded, not raised.

Usage: uv run python -m bench.detection [--quick] [--band "<1k"] [--datasets wine,iris]
           [--seeds 0,1] [--defects clean,shift_0.5sd] [--workers 2] [--out FILE]
Prints the Markdown tables of bench/RESULTS.md and writes every run to a JSON file.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from app.checks.expectations import LoadedSuite, check_expectations, parse_suite
from app.checks.inference import infer_suite
from app.checks.runner import DataInput, ValidationJob, run_validation
from app.checks.service import ValidationService
from app.checks.workers import WorkerCrashed
from app.core.config import Settings
from app.core.errors import DatagateError
from app.ingest.formats import DecodeLimits
from app.main import create_app
from bench.detection_data import (
    DATASETS,
    DEFECTS,
    QUICK_SEEDS,
    SEEDS,
    Dataset,
    Planted,
    Split,
    band,
    clean_split,
    plant,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "detection.json"
TARGETS = {"false_alarm": 0.05, "recall": 0.95, "naming": 0.90}

# The checks that answer a defect where no expectation does: a skipped row of one of these
# means the report said the data was too small to tell.
RELEVANT_CHECKS: dict[str, set[str]] = {
    "label_leak_existing_column": {"FeatureLabelCorrelationChange"},
    "label_leak_new_column": {"FeatureLabelCorrelationChange"},
    "shift_0.5sd": {"FeatureDrift", "MultivariateDrift"},
    "shift_0.25sd": {"FeatureDrift", "MultivariateDrift"},
    "label_shift": {"LabelDrift"},
    "copied_rows": {"TrainTestSamplesMix"},
    "duplicated_rows": {"DataDuplicates"},
}
# Plants of whole rows, which a table of mostly repeated rows cannot show.
ROW_IDENTITY_DEFECTS = ("copied_rows", "duplicated_rows")
# A table shows them when at least this share of its rows are distinct.
MIN_DISTINCT_SHARE = 0.5


@dataclass
class Run:
    """One validation: a clean split (`defect` "clean") or a split with one planted defect."""

    dataset: str
    group: str
    band: str
    rows: int
    seed: int
    train_share: float
    defect: str
    planted_columns: list[str]
    http_status: int
    status: str
    report_id: str | None
    seconds: float
    # (check name, column, severity, names a planted column in its observed values) per failed row
    failed: list[list[Any]] = field(default_factory=list)
    errored: list[list[Any]] = field(default_factory=list)
    detail: str = ""
    # The failed rows its clean split (same table and seed) did not have; set by `attribute`.
    new_failed: list[list[Any]] = field(default_factory=list)
    # (check name, column) per skipped row: the report said the data is too small to tell.
    skipped: list[list[Any]] = field(default_factory=list)
    # False for a plant the table cannot show: copied or duplicated rows in a table whose rows
    # are mostly repeats already (titanic: 24 distinct rows of 1,316).
    identifiable: bool = True

    @property
    def told_too_small(self) -> bool:
        """Not detected, but the report skipped a check that answers this defect, saying the
        data is too small to tell (and the size it needs)."""
        relevant = RELEVANT_CHECKS.get(self.defect, set())
        return not self.detected and any(row[0] in relevant for row in self.skipped)

    @property
    def is_failed(self) -> bool:
        return self.status == "failed"

    @property
    def detected(self) -> bool:
        """Failed, and by a row the clean split did not fail: the defect, not the table."""
        return self.is_failed and bool(self.new_failed)

    @property
    def naming(self) -> tuple[int, int]:
        """Failed rows (new against the clean split) whose `column` is a planted column."""
        planted = set(self.planted_columns)
        return sum(1 for row in self.new_failed if row[1] in planted), len(self.new_failed)

    @property
    def mentioning(self) -> int:
        """Failed rows naming a planted column, in `column` or in a table-level row's values;
        not MultivariateDrift, whose top five features name most columns of a small table."""
        planted = set(self.planted_columns)
        return sum(
            1
            for row in self.new_failed
            if row[1] in planted or (row[3] and row[0] != "MultivariateDrift")
        )


# --- the service --------------------------------------------------------------------------


@contextmanager
def service(workers: int, *, html: bool) -> Iterator[TestClient]:
    """The app in-process; without `html`, jobs are built without an artifacts folder, so
    deepchecks' HTML page (half the run time, no part of any verdict) is not written."""
    if not html:
        build_job = ValidationService.build_job

        def without_html(self: ValidationService, *args: Any, **kwargs: Any) -> Any:
            return build_job(self, *args, **kwargs).model_copy(update={"artifacts_dir": None})

        ValidationService.build_job = without_html  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="datagate-detect-") as tmp:
        root = Path(tmp)
        (root / "expectations").mkdir()
        settings = Settings(
            data_dir=root / "data",
            expectations_dir=root / "expectations",
            workers=workers,
            log_level="WARNING",
            job_timeout_s=3600,
        )
        # A keyless service answers only to loopback host names (DNS rebinding): TestClient's
        # requests name localhost.
        client = TestClient(create_app(settings), base_url="http://localhost")
        for attempt in range(3):
            try:
                client.__enter__()
                break
            except WorkerCrashed:
                # A worker gets 120 s to start; on a machine shared with other runs it may not.
                if attempt == 2:
                    raise
        try:
            yield client
        finally:
            client.__exit__(None, None, None)


@contextmanager
def engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="datagate-detect-") as tmp:
        yield Engine(Path(tmp))


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def put_suite(client: TestClient, name: str, train: pd.DataFrame) -> None:
    suite = infer_suite(train, name)
    response = client.put(f"/v1/suites/{name}", json=suite)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"suite {name}: {response.status_code} {response.text[:300]}")


def validate(
    client: TestClient,
    suite: str,
    dataset: Dataset,
    reference: bytes,
    test: pd.DataFrame,
) -> tuple[int, dict[str, Any]]:
    fields = {"suite": suite}
    if dataset.label:
        fields["label"] = dataset.label
    if dataset.datetime:
        fields["datetime"] = dataset.datetime
    response = client.post(
        "/v1/validations",
        files={
            "data": ("data.parquet", _parquet(test), "application/octet-stream"),
            "reference": ("reference.parquet", reference, "application/octet-stream"),
        },
        data=fields,
    )
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    return response.status_code, body


class Engine:
    """The worker's side of a validation without the HTTP layer: `run_validation` on Parquet
    files, in this process. A domain error (a 4xx in the service) is recorded with its code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings(data_dir=root / "data", expectations_dir=root / "expectations")
        self.suites: dict[str, LoadedSuite] = {}

    def put_suite(self, name: str, train: pd.DataFrame) -> None:
        suite = parse_suite(name, json.dumps(infer_suite(train, name)), "api")
        check_expectations(suite)
        self.suites[name] = suite

    def validate(
        self, suite: str, dataset: Dataset, reference: Path, test: pd.DataFrame
    ) -> tuple[int, dict[str, Any]]:
        path = self.root / f"data-{uuid.uuid4().hex}.parquet"
        test.to_parquet(path, index=False)
        roles = {k: v for k, v in (("label", dataset.label), ("datetime", dataset.datetime)) if v}
        job = ValidationJob(
            id=uuid.uuid4().hex,
            data=DataInput(path=path, format="parquet", name="data.parquet"),
            suite=self.suites[suite],
            reference=DataInput(path=reference, format="parquet", name="reference.parquet"),
            roles=roles,
            max_rows=self.settings.max_rows,
            limits=DecodeLimits.from_settings(self.settings),
            sample_values=self.settings.sample_values,
        )
        try:
            report = run_validation(job)
        except DatagateError as exc:
            return exc.status_code, {"detail": exc.message}
        finally:
            path.unlink()
        return 200, report.model_dump(mode="json")


def stored(client: TestClient, report_id: str) -> dict[str, Any] | None:
    response = client.get(f"/v1/reports/{report_id}")
    return response.json() if response.status_code == 200 else None


def _mentions(observed: Any, columns: set[str]) -> bool:
    """A table-level row (no `column`) names a column when its observed values hold the name
    as a string (a schema row's missing columns, a domain classifier's top five features)."""
    if isinstance(observed, str):
        return observed in columns
    if isinstance(observed, dict):
        return any(k in columns or _mentions(v, columns) for k, v in observed.items())
    if isinstance(observed, list):
        return any(_mentions(v, columns) for v in observed)
    return False


def run_one(
    client: TestClient | Engine,
    suite: str,
    dataset: Dataset,
    split: Split,
    rows: int,
    reference: bytes | Path,
    planted: Planted | None,
) -> Run:
    test = split.test if planted is None else planted.test
    started = time.perf_counter()
    if isinstance(client, Engine):
        assert isinstance(reference, Path)
        code, body = client.validate(suite, dataset, reference, test)
    else:
        assert isinstance(reference, bytes)
        code, body = validate(client, suite, dataset, reference, test)
    seconds = time.perf_counter() - started
    run = Run(
        dataset=dataset.name,
        group=dataset.group,
        band=band(rows),
        rows=rows,
        seed=split.seed,
        train_share=split.train_share,
        defect="clean" if planted is None else planted.kind,
        planted_columns=[] if planted is None else list(planted.columns),
        http_status=code,
        status="http_error",
        report_id=None,
        seconds=round(seconds, 2),
    )
    if code != 200:
        run.detail = str(body.get("detail", body))[:300]
        return run
    report = body if isinstance(client, Engine) else stored(client, body["id"])
    if report is None:
        run.detail = "report not stored"
        return run
    run.report_id = report["id"]
    run.status = report["status"]
    planted_columns = set(run.planted_columns)
    run.failed = [
        [
            c["name"],
            c.get("column"),
            c.get("severity"),
            c.get("column") is None and _mentions(c.get("observed"), planted_columns),
        ]
        for c in report["checks"]
        if c["outcome"] == "failed"
    ]
    run.errored = [
        [c["name"], c.get("column")] for c in report["checks"] if c["outcome"] == "error"
    ]
    run.skipped = [
        [c["name"], c.get("column")] for c in report["checks"] if c["outcome"] == "skipped"
    ]
    if report.get("error"):
        run.detail = str(report["error"])[:300]
    return run


def bench_dataset(
    client: TestClient | Engine,
    dataset: Dataset,
    seeds: tuple[int, ...],
    defects: list[str],
    workers: int,
) -> list[Run]:
    frame = dataset.load()
    rows = len(frame)
    distinct_share = 1.0 - float(frame.duplicated().mean()) if rows else 1.0
    runs: list[Run] = []
    for seed in seeds:
        split = clean_split(dataset, frame, seed)
        suite = f"detect_{dataset.name}_{seed}"
        reference: bytes | Path
        if isinstance(client, Engine):
            client.put_suite(suite, split.train)
            reference = client.root / f"{suite}.parquet"
            split.train.to_parquet(reference, index=False)
            workers = 1  # run_validation times GE calls with signals: main thread only
        else:
            put_suite(client, suite, split.train)
            reference = _parquet(split.train)
        cases: list[Planted | None] = []
        for kind in defects:
            if kind == "clean":
                cases.append(None)
                continue
            planted = plant(kind, dataset, split, seed)
            if planted is not None:
                cases.append(planted)
        one = partial(run_one, client, suite, dataset, split, rows, reference)
        if workers == 1:
            done = [one(case) for case in cases]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(one, cases))
        for run in done:
            if run.defect in ROW_IDENTITY_DEFECTS:
                run.identifiable = distinct_share >= MIN_DISTINCT_SHARE
            mark = {"failed": "F", "passed": ".", "warned": "w"}.get(run.status, "E")
            print(mark, end="", file=sys.stderr, flush=True)
        print(f" {dataset.name} seed {seed}", file=sys.stderr, flush=True)
        runs.extend(done)
    return runs


# --- metrics ------------------------------------------------------------------------------


def attribute(runs: list[Run]) -> list[Run]:
    """Set each defect run's `new_failed`: its failed rows that its clean split (same table,
    same seed) did not fail. Without that clean split every failed row counts as new."""
    baseline = {
        (r.dataset, r.seed): {(row[0], row[1]) for row in r.failed}
        for r in runs
        if r.defect == "clean"
    }
    for r in runs:
        known = baseline.get((r.dataset, r.seed), set())
        r.new_failed = [row for row in r.failed if (row[0], row[1]) not in known]
    return runs


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.1%})" if total else "-"


def _groups(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """Overall, per group, per band, per group and band."""
    out: list[tuple[str, list[Run]]] = []
    for group in ("held-out", "tuning"):
        in_group = [r for r in runs if r.group == group]
        for size in ("<1k", "1k-100k", ">100k"):
            chosen = [r for r in in_group if r.band == size]
            if chosen:
                out.append((f"{group} {size}", chosen))
        if in_group:
            out.append((f"**{group} all**", in_group))
    out.append(("**all**", runs))
    return out


def summary_table(runs: list[Run]) -> str:
    lines = [
        "| datasets | clean splits failed (false alarms, target <= 5%) | defects failed "
        "| ... by a row the clean split did not fail (recall, target >= 95%) | those rows "
        "naming the planted column (target >= 90%) | ... counting table-level rows that list "
        "it | 4xx / error reports (target 0) | recall of identifiable plants | ... not "
        "detected: report said too small to tell / missed silently |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, chosen in _groups(runs):
        clean = [r for r in chosen if r.defect == "clean"]
        planted = [r for r in chosen if r.defect != "clean"]
        targeted = [r for r in planted if r.planted_columns]
        named = sum(r.naming[0] for r in targeted)
        failing = sum(r.naming[1] for r in targeted)
        mentioned = sum(r.mentioning for r in targeted)
        bad = sum(1 for r in chosen if r.status in ("http_error", "error"))
        identifiable = [r for r in planted if r.identifiable]
        told = sum(r.told_too_small for r in identifiable)
        silent = sum(not r.detected and not r.told_too_small for r in identifiable)
        lines.append(
            f"| {name} | {_rate(sum(r.is_failed for r in clean), len(clean))} | "
            f"{_rate(sum(r.is_failed for r in planted), len(planted))} | "
            f"{_rate(sum(r.detected for r in planted), len(planted))} | "
            f"{_rate(named, failing)} | {_rate(mentioned, failing)} | {bad} | "
            f"{_rate(sum(r.detected for r in identifiable), len(identifiable))} | "
            f"{told} / {silent} |"
        )
    return "\n".join(lines)


def per_defect_table(runs: list[Run]) -> str:
    lines = [
        "| defect | held-out detected | tuning detected | new failing rows naming the column | "
        "checks that failed (runs) |",
        "|---|---|---|---|---|",
    ]
    for kind in ["clean", *(k for k in DEFECTS if any(r.defect == k for r in runs))]:
        chosen = [r for r in runs if r.defect == kind]
        if not chosen:
            continue
        cells = []
        for group in ("held-out", "tuning"):
            part = [r for r in chosen if r.group == group]
            hits = sum(r.is_failed if kind == "clean" else r.detected for r in part)
            cells.append(_rate(hits, len(part)))
        named = sum(r.naming[0] for r in chosen)
        failing = sum(r.naming[1] for r in chosen)
        naming = _rate(named, failing) if chosen[0].planted_columns else "n/a (whole rows)"
        rows = (r.failed if kind == "clean" else r.new_failed for r in chosen)
        checks = Counter(name for failed in rows for name in {row[0] for row in failed})
        top = ", ".join(f"{n} ({c})" for n, c in checks.most_common(4))
        lines.append(f"| {kind} | {cells[0]} | {cells[1]} | {naming} | {top} |")
    return "\n".join(lines)


def _describe(rows: list[list[Any]]) -> str:
    counted = Counter(f"{row[0]}({row[1]})" if row[1] else str(row[0]) for row in rows)
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counted.items()))


def findings(runs: list[Run]) -> str:
    """Every false alarm and every miss, with the checks responsible, grouped by check."""
    out: list[str] = []
    alarms = [r for r in runs if r.defect == "clean" and r.is_failed]
    by_check: dict[str, list[str]] = defaultdict(list)
    for r in alarms:
        for name in sorted({row[0] for row in r.failed}):
            by_check[name].append(f"{r.dataset}/{r.seed}")
    out.append(f"False alarms: {len(alarms)} clean splits failed.")
    for name, where in sorted(by_check.items(), key=lambda kv: -len(kv[1])):
        out.append(f"- {name}: {len(where)} splits ({', '.join(where)})")
    out.append("")
    for r in alarms:
        out.append(f"  - {r.dataset} seed {r.seed} ({r.band}, {r.group}): {_describe(r.failed)}")
    misses = [r for r in runs if r.defect != "clean" and not r.detected]
    out.append("")
    out.append(
        f"Misses: {len(misses)} planted defects not failed by any row their clean split "
        "passed (`failed`: the report failed, on the clean split's own rows only)."
    )
    by_kind: dict[str, list[Run]] = defaultdict(list)
    for r in misses:
        by_kind[r.defect].append(r)
    for kind, chosen in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        spots = ", ".join(
            f"{r.dataset}/{r.seed}{'' if r.status == 'passed' else ' (' + r.status + ')'}"
            + ("" if r.identifiable else " [not identifiable]")
            + (" [said too small]" if r.told_too_small else "")
            for r in chosen
        )
        out.append(f"- {kind}: {len(chosen)} ({spots})")
    off: Counter[str] = Counter()
    kinds: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        if r.defect == "clean" or not r.planted_columns:
            continue
        planted = set(r.planted_columns)
        for row in r.new_failed:
            if row[1] not in planted:
                side = "no column" if row[1] is None else "another column"
                off[f"{row[0]} ({side})"] += 1
                kinds[f"{row[0]} ({side})"].add(r.defect)
    out.append("")
    out.append(
        "New failing rows of column-targeted defects not naming the planted column, by check:"
    )
    for key, count in off.most_common():
        out.append(f"- {key}: {count} rows ({', '.join(sorted(kinds[key]))})")
    problems = [r for r in runs if r.status in ("http_error", "error")]
    out.append("")
    out.append(f"4xx / error reports: {len(problems)}")
    for r in problems:
        out.append(
            f"- {r.dataset}/{r.seed} {r.defect}: HTTP {r.http_status} {r.status} "
            f"{_describe([[e[0], e[1]] for e in r.errored])} {r.detail}"
        )
    return "\n".join(out)


def markdown(runs: list[Run]) -> str:
    attribute(runs)
    return "\n\n".join(
        [coverage(runs), summary_table(runs), per_defect_table(runs), findings(runs)]
    )


def write_runs(path: Path, runs: list[Run], command: str | list[str], seconds: float) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "seconds": round(seconds, 1),
        "machine": machine_state(),
    }
    # One run a line: small enough to commit, and a rerun's diff shows which verdicts moved.
    runs_text = ",\n".join(json.dumps(asdict(run)) for run in runs)
    head = json.dumps(document)[:-1]
    path.write_text(f'{head}, "runs": [\n{runs_text}\n]}}\n')


def coverage(runs: list[Run]) -> str:
    """Which seeds each dataset ran, and how many validations: what the figures stand on."""
    lines = ["| dataset | group | band | rows | seeds | clean splits | defect runs |"]
    lines.append("|---|---|---|---|---|---|---|")
    seen: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        seen[r.dataset].append(r)
    for name, chosen in seen.items():
        first = chosen[0]
        seeds = ",".join(str(s) for s in sorted({r.seed for r in chosen}))
        clean = sum(r.defect == "clean" for r in chosen)
        lines.append(
            f"| {name} | {first.group} | {first.band} | {first.rows:,} | {seeds} | {clean} | "
            f"{len(chosen) - clean} |"
        )
    return "\n".join(lines)


def machine_state() -> str:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {' '.join(load)} at the end"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small datasets, 2 seeds")
    parser.add_argument("--band", choices=["<1k", "1k-100k", ">100k"])
    parser.add_argument("--datasets", help="comma-separated names: " + ",".join(DATASETS))
    parser.add_argument("--seeds", help="comma-separated seeds (default 0-4; --quick 0,1)")
    parser.add_argument("--defects", help="comma-separated: clean," + ",".join(DEFECTS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--html", action="store_true", help="also write deepchecks' HTML pages")
    parser.add_argument(
        "--path",
        choices=["service", "engine"],
        default="service",
        help="service: the FastAPI app in-process (TestClient, worker processes, SQLite store); "
        "engine: run_validation in this process, no HTTP layer or store",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        help="print the tables of earlier runs (their runs merged) and write them to --out",
    )
    args = parser.parse_args()

    if args.from_json:
        parts = [json.loads(path.read_text()) for path in args.from_json]
        # A split validated twice (a clean split in two runs) counts once: the first one.
        unique: dict[tuple[str, int, str], Run] = {}
        for part in parts:
            for saved in part["runs"]:
                run = Run(**saved)
                unique.setdefault((run.dataset, run.seed, run.defect), run)
        merged = list(unique.values())
        if args.out != DEFAULT_OUT or not any(p == args.out for p in args.from_json):
            write_runs(
                args.out, merged, [p["command"] for p in parts], sum(p["seconds"] for p in parts)
            )
        print(markdown(merged))
        return

    chosen = list(DATASETS.values())
    if args.quick:
        chosen = [d for d in chosen if d.quick]
    if args.datasets:
        names = args.datasets.split(",")
        unknown = set(names) - set(DATASETS)
        if unknown:
            parser.error(f"unknown dataset(s): {', '.join(sorted(unknown))}")
        chosen = [DATASETS[n] for n in names]
    seeds: tuple[int, ...] = QUICK_SEEDS if args.quick else SEEDS
    if args.seeds:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    defects = ["clean", *DEFECTS]
    if args.defects:
        defects = args.defects.split(",")

    started = time.perf_counter()
    runs: list[Run] = []
    with service(args.workers, html=args.html) if args.path == "service" else engine() as client:
        for dataset in chosen:
            if args.band and args.band != band(dataset.rows or len(dataset.load())):
                continue
            runs.extend(bench_dataset(client, dataset, seeds, defects, args.workers))
            # After each dataset, so that a long run can be read (--from-json) while it goes on.
            write_runs(args.out, runs, " ".join(sys.argv), time.perf_counter() - started)
    elapsed = time.perf_counter() - started

    write_runs(args.out, runs, " ".join(sys.argv), elapsed)
    print(markdown(runs))
    print(
        f"\n{len(runs)} validations in {elapsed / 60:.1f} min; {machine_state()}; "
        f"runs in {args.out}"
    )


if __name__ == "__main__":
    main()
