"""`datagate validate` and `datagate suites` as a pipeline runs them: a real server process,
exit codes 0/1/2, the summary a person reads, the report file, and --local without a server."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.checks.suite_file import check_suite_file, expectation_lines
from app.cli import Progress
from app.client import DatagateClient
from app.reports.model import Report
from tests.conftest import EXAMPLES, EXPECTATIONS, REPO

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["tests.server_process"]

PENGUINS = str(EXAMPLES / "penguins.csv")
PENGUINS_BAD = str(EXAMPLES / "penguins_bad.csv")


def datagate(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_clean_data_passes_with_exit_0_and_writes_the_report(
    datagate_server: Server, tmp_path: Path
) -> None:
    output = tmp_path / "report.json"
    run = datagate(
        "validate", PENGUINS, "--suite", "penguins", "--output", str(output),
        env=datagate_server.env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("datagate: PASSED  penguins.csv (344 rows) against suite penguins")
    report = Report.model_validate_json(output.read_text())
    assert report.status == "passed"
    assert f"report: {datagate_server.url}/reports/{report.id}" in run.stdout


def test_planted_defects_fail_with_exit_1_naming_column_expected_and_observed(
    datagate_server: Server,
) -> None:
    run = datagate("validate", PENGUINS_BAD, "--suite", "penguins", env=datagate_server.env())
    assert run.returncode == 1, run.stderr
    assert "datagate: FAILED" in run.stdout
    assert "3 failed" in run.stdout
    species = run.stdout.split("column=species", 1)[1]
    assert 'value_set=["Adelie", "Chinstrap", "Gentoo"]' in species
    assert '"Emperor" x3' in species
    assert "column=body_mass_g" in run.stdout


def test_a_file_reference_is_validated_where_it_lives(datagate_server: Server) -> None:
    uri = Path(PENGUINS_BAD).resolve().as_uri()
    run = datagate("validate", uri, "--suite", "penguins", env=datagate_server.env())
    assert run.returncode == 1, run.stderr
    assert "datagate: FAILED  penguins_bad.csv" in run.stdout


def test_server_and_api_key_can_be_given_as_options(datagate_server: Server) -> None:
    env = datagate_server.env()
    del env["DATAGATE_URL"], env["DATAGATE_API_KEY"]
    run = datagate(
        "validate", PENGUINS, "--suite", "penguins",
        "--server", datagate_server.url, "--api-key", datagate_server.write_key, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (["--suite", "nope"], {}, 'suite "nope" not found'),
        (["--suite", "penguins"], {"DATAGATE_API_KEY": ""}, "401"),
        (["--suite", "penguins"], {"DATAGATE_URL": "http://127.0.0.1:9"}, "cannot reach"),
        (["--suite", "penguins", "--thresholds", "[1]"], {}, "--thresholds"),
    ],
    ids=["unknown-suite", "no-key", "unreachable-server", "bad-thresholds"],
)
def test_usage_and_service_errors_exit_2_with_a_message(
    datagate_server: Server, args: list[str], env_change: dict[str, str], message: str
) -> None:
    run = datagate("validate", PENGUINS, *args, env=datagate_server.env(**env_change))
    assert run.returncode == 2
    assert message in run.stderr
    assert run.stdout == ""


def test_a_missing_file_exits_2(datagate_server: Server) -> None:
    run = datagate("validate", "nowhere.csv", "--suite", "penguins", env=datagate_server.env())
    assert run.returncode == 2
    assert "not a file" in run.stderr


def test_fail_on_warning_makes_warned_checks_fail_the_gate(datagate_server: Server) -> None:
    suite = {
        "expectations": [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "species", "value_set": ["Adelie"]},
                "severity": "warning",
            }
        ]
    }
    with DatagateClient(datagate_server.url, api_key=datagate_server.write_key) as client:
        client.put_suite("only-adelie", suite)
    lenient = datagate("validate", PENGUINS, "--suite", "only-adelie", env=datagate_server.env())
    assert lenient.returncode == 0
    assert "1 warned" in lenient.stdout and "! [set]" in lenient.stdout
    strict = datagate(
        "validate", PENGUINS, "--suite", "only-adelie", "--fail-on", "warning",
        env=datagate_server.env(),
    )  # fmt: skip
    assert strict.returncode == 1
    assert "FAILED (warnings" in strict.stdout


def test_async_mode_submits_a_job_and_polls_it(datagate_server: Server) -> None:
    run = datagate(
        "validate", PENGUINS_BAD, "--suite", "penguins", "--async", env=datagate_server.env()
    )
    assert run.returncode == 1, run.stderr
    assert "queued job" in run.stderr
    assert "column=species" in run.stdout


def test_json_prints_the_report_instead_of_the_summary(datagate_server: Server) -> None:
    run = datagate(
        "validate", PENGUINS_BAD, "--suite", "penguins", "--json", env=datagate_server.env()
    )
    assert run.returncode == 1
    assert Report.model_validate_json(run.stdout).status == "failed"


@pytest.mark.slow
def test_local_gives_the_same_verdict_and_checks_as_the_server(
    datagate_server: Server, tmp_path: Path
) -> None:
    env = datagate_server.env(DATAGATE_DATA_DIR=str(tmp_path / "data"))
    del env["DATAGATE_URL"]
    for data in (PENGUINS, PENGUINS_BAD):
        local = tmp_path / "local.json"
        served = tmp_path / "served.json"
        by_local = datagate(
            "validate", data, "--suite", "penguins", "--local",
            "--expectations", str(EXPECTATIONS), "--output", str(local), env=env,
        )  # fmt: skip
        by_server = datagate(
            "validate", data, "--suite", "penguins", "--output", str(served),
            env=datagate_server.env(),
        )  # fmt: skip
        assert by_local.returncode == by_server.returncode, by_local.stderr
        one = Report.model_validate_json(local.read_text())
        other = Report.model_validate_json(served.read_text())
        assert one.summary == other.summary
        assert one.suite == other.suite
        assert one.dataset.sha256 == other.dataset.sha256
        # The server keeps failing rows with its reports; --local only with --failing-rows.
        for check in other.checks:
            check.details.pop("failing_rows", None)
        assert [c.model_dump() for c in one.checks] == [c.model_dump() for c in other.checks]
        assert one.report_url is None
        assert "report:" not in by_local.stdout


def test_schema_drift_is_a_failed_gate_exit_1_naming_both_columns(tmp_path: Path) -> None:
    """A renamed column against a reference is the data failing the gate (1), not a request the
    service could not validate (2): the summary names the column lost and the one gained."""
    import pandas as pd

    penguins = pd.read_csv(PENGUINS).sample(frac=1.0, random_state=4)
    reference, data = tmp_path / "train.csv", tmp_path / "test.csv"
    penguins.iloc[:230].to_csv(reference, index=False)
    renamed = penguins.iloc[230:].rename(columns={"bill_length_mm": "bill_len_mm"})
    renamed.to_csv(data, index=False)
    output = tmp_path / "report.json"

    run = datagate(
        "validate", str(data), "--reference", str(reference), "--label", "species",
        "--local", "--output", str(output),
    )  # fmt: skip

    assert run.returncode == 1, run.stdout + run.stderr
    assert "datagate: FAILED" in run.stdout
    assert "SchemaColumnMissing column=bill_length_mm" in run.stdout
    assert "SchemaColumnAdded column=bill_len_mm" in run.stdout
    report = Report.model_validate_json(output.read_text())
    assert report.status == "failed"
    assert {c.column for c in report.checks if c.name == "FeatureDrift"} >= {"bill_depth_mm"}


def test_suites_list_and_show(datagate_server: Server) -> None:
    listing = datagate("suites", "list", env=datagate_server.env())
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.startswith("penguins "))
    assert line.split()[1] == "file"
    shown = datagate("suites", "show", "penguins", env=datagate_server.env())
    assert json.loads(shown.stdout)["name"] == "penguins"
    missing = datagate("suites", "show", "nope", env=datagate_server.env())
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_suites_infer_writes_a_suite_that_is_saved_and_passes_its_data(
    datagate_server: Server, tmp_path: Path
) -> None:
    target = tmp_path / "inferred.json"
    run = datagate(
        "suites", "infer", PENGUINS, "--name", "penguins-inferred", "-o", str(target), "--save",
        env=datagate_server.env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "saved suite penguins-inferred" in run.stderr
    assert check_suite_file(target, name="penguins-inferred") == []
    gate = datagate("validate", PENGUINS, "--suite", "penguins-inferred", env=datagate_server.env())
    assert gate.returncode == 0, gate.stdout
    bad = datagate(
        "validate", PENGUINS_BAD, "--suite", "penguins-inferred", env=datagate_server.env()
    )
    assert bad.returncode == 1


def test_suites_infer_takes_inference_options_on_the_server_and_locally(
    datagate_server: Server, tmp_path: Path
) -> None:
    flags = ["--false-alarm-rate", "0.001", "--no-row-count", "--max-set-size", "2"]
    for where in (["--local"], []):
        run = datagate(
            "suites", "infer", PENGUINS, "--name", "tuned", *flags, *where,
            env=datagate_server.env(),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        suite = json.loads(run.stdout)
        options = suite["meta"]["inferred"]["options"]
        assert (options["false_alarm_rate"], options["row_count"], options["max_set_size"]) == (
            0.001,
            False,
            2,
        ), where
        types = {e["type"] for e in suite["expectations"]}
        assert "expect_table_row_count_to_be_between" not in types


def test_suites_infer_refuses_a_bad_option_with_exit_2_naming_it(datagate_server: Server) -> None:
    for where in (["--local"], []):
        run = datagate(
            "suites", "infer", PENGUINS, "--name", "x", "--false-alarm-rate", "2", *where,
            env=datagate_server.env(),
        )  # fmt: skip
        assert run.returncode == 2, where
        assert "false_alarm_rate" in run.stderr, run.stderr


def test_cli_inference_options_are_inference_options_fields() -> None:
    from app.checks.inference import InferenceOptions
    from app.cli import INFER_OPTIONS

    assert set(INFER_OPTIONS) <= set(InferenceOptions.model_fields)


def test_suites_check_names_the_line_of_each_bad_expectation(tmp_path: Path) -> None:
    definition = json.loads((EXPECTATIONS / "penguins.json").read_text())
    definition["expectations"][3]["type"] = "expect_magic"
    definition["expectations"][20]["kwargs"]["colum"] = "x"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(definition, indent=2))
    lines = expectation_lines(broken.read_text())
    run = datagate("suites", "check", str(broken))
    assert run.returncode == 1
    problems = run.stderr.splitlines()
    assert problems[0].startswith(f"{broken}:{lines[3]}: ")
    assert 'unknown expectation type "expect_magic"' in problems[0]
    assert problems[1].startswith(f"{broken}:{lines[20]}: ")
    assert 'unknown argument "colum"' in problems[1]
    text = broken.read_text().splitlines()
    assert text[lines[3] - 1].strip() == "{"  # the line where that expectation opens


def test_suites_check_accepts_the_shipped_suites_and_reports_json_errors(tmp_path: Path) -> None:
    assert datagate("suites", "check", str(EXPECTATIONS / "penguins.json")).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"expectations": [\n  {"type": "x",\n}')
    run = datagate("suites", "check", str(bad))
    assert run.returncode == 1
    assert f"{bad}:3:" in run.stderr


def test_suites_check_shape_finds_shape_problems_without_importing_the_engines(
    tmp_path: Path,
) -> None:
    definition = json.loads((EXPECTATIONS / "penguins.json").read_text())
    definition["expectations"][2]["severity"] = "loud"
    definition["expectations"][5]["kwargs"]["row_condition"] = 'df["x"] > 0'
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(definition, indent=2))
    lines = expectation_lines(broken.read_text())
    # The check itself, in a fresh interpreter: which modules it needed.
    probe = (
        "import sys; from pathlib import Path; from app.checks.suite_file import check_suite_file; "
        f"problems = check_suite_file(Path({str(broken)!r}), engine=False); "
        "print(len(problems)); print(*problems, sep='\\n'); "
        "print(sorted(m for m in ('great_expectations', 'deepchecks') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    ).stdout.splitlines()
    assert out[0] == "2"
    assert out[1].startswith(f"{broken}:{lines[2]}: ") and "severity 'loud'" in out[1]
    assert out[2].startswith(f"{broken}:{lines[5]}: ") and "row_condition" in out[2]
    assert out[3] == "[]"
    run = datagate("suites", "check", "--shape", str(EXPECTATIONS / "penguins.json"))
    assert run.returncode == 0, run.stderr


def test_suites_check_refuses_roles_naming_columns_outside_the_column_set(tmp_path: Path) -> None:
    definition = json.loads((EXPECTATIONS / "penguins.json").read_text())
    definition["meta"]["datagate"] = {"roles": {"label": "specie", "categorical": "island"}}
    suite = tmp_path / "roles.json"
    suite.write_text(json.dumps(definition))
    problems = check_suite_file(suite)
    assert any('label: column "specie" is not in' in p for p in problems)
    assert any("categorical: expected a list" in p for p in problems)


def test_expectation_lines_ignore_brackets_in_strings_and_nested_arrays() -> None:
    text = (
        '{"meta": {"expectations": [1]},\n "expectations": [\n'
        '  {"kwargs": {"s": "]\\" ,", "l": [1, 2]}},\n\n  {"type": "b"}\n]}'
    )
    json.loads(text)
    assert expectation_lines(text) == [3, 5]


def test_progress_draws_on_a_terminal_and_stays_quiet_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    Progress(screen, enabled=True).upload(512, 1024)
    assert "50%" in screen.getvalue()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("CI", "true")
    quiet = Terminal()
    Progress(quiet).upload(1024, 1024)
    assert quiet.getvalue() == ""
    monkeypatch.delenv("CI")
    assert Progress(Terminal()).enabled
    assert not Progress(io.StringIO()).enabled  # a log file, not a terminal


def test_severity_flags_turn_failed_expectations_into_warnings(datagate_server: Server) -> None:
    run = datagate(
        "validate", PENGUINS_BAD, "--suite", "penguins",
        "--severity", "expect_column_values_to_not_be_null:bill_length_mm=warning",
        "--severity", "expect_column_values_to_be_in_set=warning",
        "--per-check", '{"expect_column_values_to_be_between": {"severity": "info"}}',
        env=datagate_server.env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "0 failed, 3 warned" in run.stdout
    assert "column=body_mass_g (info)" in run.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--severity", "DataDuplicates=loud"], "'loud' is not one of critical"),
        (["--severity", "DataDuplicates"], "expected CHECK=LEVEL"),
        (["--per-check", "{oops"], "--per-check"),
        (["--drift-alpha", "2"], "drift_alpha"),
    ],
    ids=["bad-level", "no-level", "bad-json", "alpha-out-of-range"],
)
def test_bad_severity_or_alpha_flags_exit_2_naming_them(
    datagate_server: Server, flags: list[str], message: str
) -> None:
    run = datagate("validate", PENGUINS, "--suite", "penguins", *flags, env=datagate_server.env())
    assert run.returncode == 2
    assert message in run.stderr


def test_serve_on_a_busy_port_exits_2_naming_the_port(tmp_path: Path) -> None:
    import os
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGATE_")}
    env["DATAGATE_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = datagate("serve", "--port", str(port), env=env)
    assert run.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "--port" in run.stderr
    assert not (tmp_path / "data").exists(), "nothing started before the port was checked"


LOCAL_IMPORTS = """
import sys
from app.cli import main
code = main(["validate", sys.argv[1], "--suite", "penguins", "--local", "--json"])
print("deepchecks" in sys.modules, file=sys.stderr)
"""


@pytest.mark.process
def test_local_validation_without_a_reference_never_imports_deepchecks() -> None:
    run = subprocess.run(
        [sys.executable, "-c", LOCAL_IMPORTS, PENGUINS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert Report.model_validate_json(run.stdout).status == "passed"
    assert run.stderr.strip().splitlines()[-1] == "False", "deepchecks was imported"
