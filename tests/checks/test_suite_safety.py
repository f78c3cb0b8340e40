"""Suites are data, never code: row conditions that reach pandas' evaluator, suite parameters,
uncompilable and catastrophic regular expressions, and suites too large or too deep."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.checks.expectations import LoadedSuite, SuiteRegistry, parse_suite, run_suite
from app.checks.runner import DataInput, ValidationJob, run_validation
from app.checks.suite_safety import SuiteLimits
from app.checks.workers import WorkerPool
from app.core.errors import SuiteInvalid
from app.ingest.formats import DataFormat

NOT_NULL = "expect_column_values_to_not_be_null"
REGEX = "expect_column_values_to_match_regex"


def command_conditions(marker: Path) -> dict[str, dict[str, Any]]:
    """Row conditions that ran `touch marker` in the worker before this fix, one per route."""
    touch = f"@pd.compat.os.system('touch {marker}')"
    escape = f"x` or {touch} or `x"
    return {
        "pandas parser": {"row_condition": touch, "condition_parser": "pandas"},
        "python parser": {"row_condition": touch, "condition_parser": "python"},
        "no parser": {"row_condition": touch},
        # GE's own parser accepts any column name and renders it in backticks for
        # DataFrame.query: a backtick in the name ends the quoting.
        "great_expectations parser": {
            "row_condition": f'col("{escape}") == 1',
            "condition_parser": "great_expectations",
        },
        "condition object": {
            "row_condition": {
                "type": "comparison",
                "column": {"name": escape},
                "operator": "==",
                "parameter": 1,
            }
        },
        "pass_through object": {
            "row_condition": {"type": "pass_through", "pass_through_filter": touch}
        },
    }


def suite_text(*expectations: dict[str, Any], meta: Any = None) -> str:
    body: dict[str, Any] = {"expectations": list(expectations)}
    if meta is not None:
        body["meta"] = meta
    return json.dumps(body)


def raw_suite(*expectations: dict[str, Any]) -> LoadedSuite:
    """A suite as a queued job carries it: never parsed in this process."""
    definition = {"name": "raw", "expectations": list(expectations), "meta": {}}
    return LoadedSuite("raw", definition, "f" * 64, "api", len(expectations))


FRAME = pd.DataFrame({"x": [1, 2, 3], "name": ["ann", "cat", "cat"]})


@pytest.mark.parametrize("route", list(command_conditions(Path("/unused"))))
def test_a_row_condition_that_would_run_a_command_is_refused_and_never_runs(
    route: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    kwargs = {"column": "x", **command_conditions(marker)[route]}
    text = suite_text(
        {"type": NOT_NULL, "kwargs": {"column": "x"}}, {"type": NOT_NULL, "kwargs": kwargs}
    )

    with pytest.raises(SuiteInvalid) as caught:
        parse_suite("orders", text, "api", check=False)
    message = caught.value.message
    assert message.startswith(f'suite "orders": expectations[1] ({NOT_NULL}): kwargs.')
    assert "row_condition" in message or "condition_parser" in message

    # The worker checks again before Great Expectations sees a suite it did not parse itself.
    with pytest.raises(SuiteInvalid, match=r"expectations\[1\]"):
        run_suite(
            FRAME,
            raw_suite(
                {"type": NOT_NULL, "kwargs": {"column": "x"}}, {"type": NOT_NULL, "kwargs": kwargs}
            ),
            sample_values=3,
        )
    assert not marker.exists()


def test_great_expectations_conditions_that_are_data_still_filter_rows() -> None:
    cat = {"type": "comparison", "column": {"name": "name"}, "operator": "==", "parameter": "cat"}
    both = {
        "type": "and",
        "conditions": [cat, {"type": "nullity", "column": {"name": "x"}, "is_null": False}],
    }
    suite = parse_suite(
        "conditions",
        suite_text(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {
                    "column": "x",
                    "min_value": 2,
                    "row_condition": 'col("name")=="cat"',
                    "condition_parser": "great_expectations",
                },
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "x", "min_value": 2, "row_condition": both},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "x", "min_value": 2},
            },
        ),
        "api",
    )
    checks = run_suite(FRAME, suite, sample_values=3)
    assert [c.outcome for c in checks] == ["passed", "passed", "failed"]
    assert [c.observed["element_count"] for c in checks] == [2, 2, 3]


JSON_SCHEMA = "expect_column_values_to_match_json_schema"


@pytest.mark.parametrize("key", ["$ref", "$dynamicRef", "$recursiveRef"])
def test_a_json_schema_reference_to_a_url_is_refused_and_nothing_is_fetched(key: str) -> None:
    # jsonschema fetched such a reference with urllib: the worker connected to any host and port.
    with socket.socket() as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(4)
        trap.settimeout(0.5)
        url = f"http://127.0.0.1:{trap.getsockname()[1]}/schema.json"
        schema = {"type": "object", "properties": {"a": {"allOf": [{key: url}]}}}
        kwargs = {"column": "doc", "json_schema": schema}
        frame = pd.DataFrame({"doc": ['{"a": 1}']})

        with pytest.raises(SuiteInvalid) as caught:
            parse_suite("orders", suite_text({"type": JSON_SCHEMA, "kwargs": kwargs}), "api")
        assert caught.value.message == (
            f'suite "orders": expectations[0] ({JSON_SCHEMA}): kwargs.json_schema: {key} '
            f'{url!r} points outside the schema; only references within it ("#/...") are '
            "followed"
        )
        with pytest.raises(SuiteInvalid, match="points outside the schema"):
            run_suite(frame, raw_suite({"type": JSON_SCHEMA, "kwargs": kwargs}), sample_values=3)
        with pytest.raises(TimeoutError):
            trap.accept()


def test_a_json_schema_referring_within_itself_still_checks_values() -> None:
    schema = {
        "definitions": {"small": {"type": "integer", "maximum": 5}},
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/small"}},
    }
    suite = parse_suite(
        "orders",
        suite_text({"type": JSON_SCHEMA, "kwargs": {"column": "doc", "json_schema": schema}}),
        "api",
    )
    frame = pd.DataFrame({"doc": ['{"a": 1}', '{"a": 9}']})
    [check] = run_suite(frame, suite, sample_values=3)
    assert check.outcome == "failed"
    assert check.observed["unexpected_count"] == 1


def test_suite_parameter_arithmetic_is_refused() -> None:
    kwargs = {"column": "x", "mostly": {"$PARAMETER": "9^9^9^9"}}
    with pytest.raises(SuiteInvalid, match=r"suite parameters \(\$PARAMETER\) are not supported"):
        parse_suite("orders", suite_text({"type": NOT_NULL, "kwargs": kwargs}), "api", check=False)


def test_a_suite_file_with_a_command_condition_is_listed_broken_and_the_rest_load(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    condition = command_conditions(marker)["pandas parser"]
    (tmp_path / "evil.json").write_text(
        suite_text({"type": NOT_NULL, "kwargs": {"column": "x", **condition}})
    )
    (tmp_path / "fine.json").write_text(suite_text({"type": NOT_NULL, "kwargs": {"column": "x"}}))

    registry = SuiteRegistry.from_directory(tmp_path, check=False)

    assert registry.names() == ["fine"]
    assert "kwargs.condition_parser 'pandas' is not accepted" in registry.errors["evil"]
    with pytest.raises(SuiteInvalid):
        registry.get("evil")
    assert not marker.exists()


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("levels", [900, 100_000])
def test_deeply_nested_meta_is_refused_naming_the_depth_limit(levels: int) -> None:
    # json.dumps itself recurses: the deep text is built by hand.
    meta = '{"a": ' * levels + "1" + "}" * levels
    text = f'{{"expectations": [{{"type": "{NOT_NULL}", "kwargs": {{}}, "meta": {meta}}}]}}'
    if levels < 990:  # what json.loads still reads (a RecursionError, not a 422, beyond)
        assert json.loads(text)["expectations"][0]["meta"] == nested(levels)
    with pytest.raises(SuiteInvalid, match=r"JSON nested deeper than the limit of 32 levels"):
        parse_suite("deep", text, "api", check=False)


def test_nesting_within_the_limit_is_accepted() -> None:
    suite = parse_suite(
        "deep",
        suite_text({"type": NOT_NULL, "kwargs": {"column": "x"}, "meta": nested(27)}),
        "api",
        check=False,
    )
    assert suite.expectation_count == 1


def test_ten_thousand_expectations_are_refused_naming_the_limit() -> None:
    text = suite_text(*[{"type": NOT_NULL, "kwargs": {"column": f"c{i}"}} for i in range(10_000)])
    with pytest.raises(SuiteInvalid, match=r"10000 expectations is over the limit of 1000"):
        parse_suite("huge", text, "api", check=False)
    small = SuiteLimits(max_expectations=2)
    with pytest.raises(SuiteInvalid, match=r"3 expectations is over the limit of 2"):
        parse_suite(
            "three",
            suite_text(*[{"type": NOT_NULL, "kwargs": {"column": "x"}}] * 3),
            "api",
            limits=small,
        )


def test_a_suite_file_over_the_byte_limit_is_listed_broken(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text(
        suite_text({"type": NOT_NULL, "kwargs": {"column": "x"}, "meta": {"pad": "x" * 2000}})
    )
    registry = SuiteRegistry.from_directory(
        tmp_path, check=False, limits=SuiteLimits(max_bytes=1000)
    )
    assert "over the limit of 1000 bytes" in registry.errors["big"]


@pytest.mark.parametrize("kwargs", [{"regex": "(a"}, {"regex_list": ["ok", "[z-a]"]}])
def test_a_pattern_python_cannot_compile_is_refused(kwargs: dict[str, Any]) -> None:
    kind = REGEX if "regex" in kwargs else "expect_column_values_to_match_regex_list"
    with pytest.raises(SuiteInvalid, match=r"kwargs.regex: .* does not compile"):
        parse_suite(
            "patterns",
            suite_text({"type": kind, "kwargs": {"column": "s", **kwargs}}),
            "api",
            check=False,
        )


CATASTROPHIC = parse_suite(
    "catastrophic",
    suite_text(
        {"type": NOT_NULL, "kwargs": {"column": "s"}},
        {"type": REGEX, "kwargs": {"column": "s", "regex": "^(a+)+$"}},
        {"type": REGEX, "kwargs": {"column": "s", "regex": "^a"}},
    ),
    "api",
    check=False,
)
# 40 a's and a '!': `^(a+)+$` tries every split of the a's (2^40) before it gives up.
SLOW_STRINGS = pd.DataFrame({"s": ["a" * 40 + "!"] * 3})


def test_a_catastrophic_regex_becomes_an_error_row_within_its_budget() -> None:
    started = time.monotonic()
    checks = run_suite(SLOW_STRINGS, CATASTROPHIC, sample_values=3, check_timeout_s=1)
    elapsed = time.monotonic() - started

    assert elapsed < 10
    assert [c.outcome for c in checks] == ["passed", "error", "passed"]
    assert "took longer than 1 s" in checks[1].details["error"]
    assert "regular expression may be catastrophic" in checks[1].details["error"]
    assert checks[1].column == "s"


def job(path: Path, job_id: str, suite: LoadedSuite) -> ValidationJob:
    return ValidationJob(
        id=job_id,
        data=DataInput(path=path, format=DataFormat.CSV, name=path.name),
        suite=suite,
        max_rows=1000,
        sample_values=3,
        check_timeout_s=1,
    )


@pytest.mark.anyio
async def test_a_worker_stops_a_catastrophic_regex_and_answers_the_next_job(
    tmp_path: Path,
) -> None:
    slow = tmp_path / "slow.csv"
    SLOW_STRINGS.to_csv(slow, index=False)
    fine = tmp_path / "fine.csv"
    pd.DataFrame({"s": ["abc", "aaa"]}).to_csv(fine, index=False)
    pool = WorkerPool(1)
    pool.start()
    try:
        await pool.warm_up()
        started = time.monotonic()
        first = await pool.run(run_validation, job(slow, "slow", CATASTROPHIC), time_limit=120)
        elapsed = time.monotonic() - started
        second = await pool.run(run_validation, job(fine, "fine", CATASTROPHIC), time_limit=120)
    finally:
        pool.shutdown()

    assert elapsed < 15
    assert first.status == "error"
    assert [c.outcome for c in first.checks] == ["passed", "error", "passed"]
    assert "took longer than 1 s" in first.checks[1].details["error"]
    assert pool.restarts == 0  # the worker was not killed: the budget, not the job timeout
    assert second.status == "failed"  # "abc" does not match ^(a+)+$: a quick, real answer
    assert [c.outcome for c in second.checks] == ["passed", "failed", "passed"]
