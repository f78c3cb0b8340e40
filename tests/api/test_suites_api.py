"""Suites through the API: create, replace and delete API suites; infer one from a dataset."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from httpx import AsyncClient

from app.checks.expectations import LoadedSuite, parse_suite
from app.checks.suite_store import SuiteStore
from app.core.db import make_engine, make_sessionmaker
from tests.conftest import EXAMPLES, RunningApp

pytestmark = pytest.mark.anyio

SMALL_SUITE: dict[str, Any] = {
    "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "species"}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "island", "value_set": ["Biscoe", "Dream", "Torgersen"]},
        },
    ],
    "meta": {"datagate": {"roles": {"label": "species"}}},
}


def unique_name(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def validate(client: AsyncClient, content: bytes, suite: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/validations", files={"data": ("data.csv", content)}, data={"suite": suite}
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_put_creates_then_replaces_and_delete_removes_an_api_suite(
    client: AsyncClient,
) -> None:
    name = unique_name()
    created = await client.put(f"/v1/suites/{name}", json=SMALL_SUITE)
    assert created.status_code == 201, created.text
    assert created.json()["origin"] == "api"
    assert created.json()["expectations"] == 2

    listing = {s["name"]: s for s in (await client.get("/v1/suites")).json()["items"]}
    assert listing[name]["origin"] == "api"
    assert listing[name]["sha256"] == created.json()["sha256"]

    changed = {**SMALL_SUITE, "expectations": SMALL_SUITE["expectations"][:1]}
    replaced = await client.put(f"/v1/suites/{name}", json=changed)
    assert replaced.status_code == 200
    assert replaced.json()["sha256"] != created.json()["sha256"]
    assert (await client.get(f"/v1/suites/{name}")).json()["expectations"] == 1

    assert (await client.delete(f"/v1/suites/{name}")).status_code == 204
    assert (await client.get(f"/v1/suites/{name}")).status_code == 404
    assert (await client.delete(f"/v1/suites/{name}")).status_code == 404


async def test_report_records_the_hash_of_the_api_suite_it_ran(client: AsyncClient) -> None:
    name = unique_name()
    sha = (await client.put(f"/v1/suites/{name}", json=SMALL_SUITE)).json()["sha256"]
    report = await validate(client, (EXAMPLES / "penguins.csv").read_bytes(), name)
    assert report["status"] == "passed"
    assert report["suite"] == {"name": name, "sha256": sha, "origin": "api", "expectations": 2}
    await client.delete(f"/v1/suites/{name}")


@pytest.mark.parametrize("method", ["put", "delete"])
async def test_suites_from_version_control_are_read_only(client: AsyncClient, method: str) -> None:
    if method == "put":
        response = await client.put("/v1/suites/penguins", json=SMALL_SUITE)
    else:
        response = await client.delete("/v1/suites/penguins")
    assert response.status_code == 409
    assert "version control" in response.json()["error"]["message"]
    assert (await client.get("/v1/suites/penguins")).json()["origin"] == "file"


async def test_a_broken_suite_file_name_cannot_be_taken_over_by_the_api(
    client: AsyncClient,
) -> None:
    response = await client.put("/v1/suites/unknown_type", json=SMALL_SUITE)
    assert response.status_code == 409


async def test_put_of_an_invalid_suite_is_refused_naming_the_expectation(
    client: AsyncClient,
) -> None:
    name = unique_name()
    bad = {"expectations": [SMALL_SUITE["expectations"][0], {"type": "expect_magic", "kwargs": {}}]}
    response = await client.put(f"/v1/suites/{name}", json=bad)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "expectations[1]" in message and "expect_magic" in message
    assert (await client.get(f"/v1/suites/{name}")).status_code == 404


async def test_put_of_text_that_is_not_json_names_line_and_column(client: AsyncClient) -> None:
    response = await client.put(
        f"/v1/suites/{unique_name()}",
        content=b'{"expectations": [\n  {"type": }\n]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "line 2" in response.json()["error"]["message"]


async def test_put_with_a_bad_name_is_refused(client: AsyncClient) -> None:
    response = await client.put("/v1/suites/-bad name", json=SMALL_SUITE)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "name" in message and "[A-Za-z0-9]" in message


async def test_inferred_suite_passes_its_data_and_a_sample_and_fails_planted_defects(
    client: AsyncClient,
) -> None:
    penguins = (EXAMPLES / "penguins.csv").read_bytes()
    inferred = await client.post(
        "/v1/suites/infer", files={"data": ("penguins.csv", penguins)}, data={"name": "ignored"}
    )
    assert inferred.status_code == 200, inferred.text
    suite = inferred.json()
    assert suite["name"] == "ignored"
    types = {e["type"] for e in suite["expectations"]}
    assert {"expect_table_columns_to_match_set", "expect_column_values_to_be_in_set"} <= types

    name = unique_name("inferred")
    assert (await client.put(f"/v1/suites/{name}", json=suite)).status_code == 201
    assert (await validate(client, penguins, name))["status"] == "passed"

    sample = pd.read_csv(io.BytesIO(penguins)).sample(frac=0.7, random_state=7)
    assert (await validate(client, sample.to_csv(index=False).encode(), name))["status"] == (
        "passed"
    )

    bad = await validate(client, (EXAMPLES / "penguins_bad.csv").read_bytes(), name)
    assert bad["status"] == "failed"
    failed_columns = {c["column"] for c in bad["checks"] if c["outcome"] == "failed"}
    assert failed_columns, bad["summary"]
    await client.delete(f"/v1/suites/{name}")


async def test_infer_names_the_suite_after_the_file_by_default(client: AsyncClient) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "colour": ["red", "red", "blue"]})
    response = await client.post(
        "/v1/suites/infer", files={"data": ("my data.csv", frame.to_csv(index=False).encode())}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "my_data"
    json.dumps(response.json())  # the proposal is plain JSON, ready to PUT


async def test_infer_refuses_an_empty_dataset_and_unknown_fields(client: AsyncClient) -> None:
    empty = await client.post("/v1/suites/infer", files={"data": ("e.csv", b"a,b\n")})
    assert empty.status_code == 422
    assert "no rows" in empty.json()["error"]["message"]
    extra = await client.post(
        "/v1/suites/infer", files={"data": ("d.csv", b"a\n1\n")}, data={"suite": "x"}
    )
    assert extra.status_code == 422
    assert "suite" in extra.json()["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"Prefer": "respond-async"}], ids=["sync", "async"])
async def test_a_stored_suite_great_expectations_rejects_is_refused_before_any_work(
    client: AsyncClient, running_app: RunningApp, headers: dict[str, str]
) -> None:
    # Another replica (or an older engine) stored a suite this engine cannot build. The API
    # process reads stored suites without Great Expectations; a worker checks this version
    # before the validation is run or queued, and the listing then names it broken.
    name = unique_name("decayed")
    text = json.dumps({"expectations": [{"type": "expect_magic", "kwargs": {"column": "x"}}]})
    engine = make_engine(running_app.app.state.settings.db_url)
    try:
        SuiteStore(make_sessionmaker(engine)).save(parse_suite(name, text, "api", check=False))
    finally:
        engine.dispose()

    response = await client.post(
        "/v1/validations",
        files={"data": ("data.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": name},
        headers=headers,
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "suite_invalid"
    assert 'unknown expectation type "expect_magic"' in error["message"]
    assert "expectations[0]" in error["message"]
    broken = {b["name"]: b["error"] for b in (await client.get("/v1/suites")).json()["broken"]}
    assert "expect_magic" in broken[name]


async def test_put_of_an_expectation_great_expectations_cannot_build_is_refused(
    client: AsyncClient,
) -> None:
    # GE raises its own ValueError subclass for a row condition it cannot parse.
    kwargs = {"column": "x", "row_condition": 'col("x")>', "condition_parser": "great_expectations"}
    suite = {"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": kwargs}]}

    response = await client.put(f"/v1/suites/{unique_name()}", json=suite)

    assert response.status_code == 422, response.text
    assert (
        "expectations[0] (expect_column_values_to_not_be_null)"
        in (response.json()["error"]["message"])
    )


async def test_a_refused_put_leaves_the_stored_version_of_the_suite_working(
    client: AsyncClient,
) -> None:
    name = unique_name()
    assert (await client.put(f"/v1/suites/{name}", json=SMALL_SUITE)).status_code == 201
    bad = {"expectations": [{"type": "expect_magic", "kwargs": {}}]}

    assert (await client.put(f"/v1/suites/{name}", json=bad)).status_code == 422

    report = await validate(client, (EXAMPLES / "penguins.csv").read_bytes(), name)
    assert report["suite"]["expectations"] == 2
    broken = [b["name"] for b in (await client.get("/v1/suites")).json()["broken"]]
    assert name not in broken


async def test_put_of_a_row_condition_that_runs_a_command_is_refused_and_never_runs(
    client: AsyncClient, tmp_path: Path
) -> None:
    marker = tmp_path / "id_output"
    kwargs = {
        "column": "species",
        "row_condition": f'@pd.compat.os.system("id > {marker}")',
        "condition_parser": "pandas",
    }
    suite = {"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": kwargs}]}
    name = unique_name("evil")

    response = await client.put(f"/v1/suites/{name}", json=suite)

    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith(
        f'suite "{name}": expectations[0] (expect_column_values_to_not_be_null): '
        "kwargs.condition_parser 'pandas' is not accepted"
    )
    # Nothing was stored, so no validation can run it either.
    refused = await client.post(
        "/v1/validations",
        files={"data": ("data.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": name},
    )
    assert refused.status_code == 404
    assert not marker.exists()


async def test_a_stored_suite_with_a_command_condition_is_refused_before_it_runs(
    client: AsyncClient, running_app: RunningApp, tmp_path: Path
) -> None:
    # Stored by an older release, which did not check conditions: the catalog reads it as data
    # and refuses it; it is listed broken and the command never runs.
    marker = tmp_path / "pwned"
    condition = {"row_condition": f"@pd.compat.os.system('touch {marker}')"}
    expectation = {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "species", **condition},
    }
    name = unique_name("stored-evil")
    definition = {"name": name, "expectations": [expectation], "meta": {}}
    engine = make_engine(running_app.app.state.settings.db_url)
    try:
        SuiteStore(make_sessionmaker(engine)).save(
            LoadedSuite(name, definition, "e" * 64, "api", 1)
        )
    finally:
        engine.dispose()

    response = await client.post(
        "/v1/validations",
        files={"data": ("data.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": name},
    )

    assert response.status_code == 422, response.text
    assert "kwargs.row_condition" in response.json()["error"]["message"]
    broken = {b["name"]: b["error"] for b in (await client.get("/v1/suites")).json()["broken"]}
    assert "evaluated by pandas" in broken[name]
    assert not marker.exists()


async def test_put_of_a_suite_nested_900_levels_is_a_422_naming_the_limit(
    client: AsyncClient,
) -> None:
    meta = '{"a": ' * 900 + "1" + "}" * 900
    body = '{"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "species"}, '
    body += f'"meta": {meta}}}]}}'

    response = await client.put(
        f"/v1/suites/{unique_name()}", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert "nested deeper than the limit of 32 levels" in response.json()["error"]["message"]
    # The service still answers.
    assert (await client.get("/v1/suites")).status_code == 200


async def test_put_of_ten_thousand_expectations_is_a_422_naming_the_limit(
    client: AsyncClient,
) -> None:
    expectations = [
        {"type": "expect_column_to_exist", "kwargs": {"column": f"c{i}"}} for i in range(10_000)
    ]
    response = await client.put(f"/v1/suites/{unique_name()}", json={"expectations": expectations})
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "10000 expectations is over the limit of 1000 per suite" in message
    assert "DATAGATE_MAX_SUITE_EXPECTATIONS" in message


async def test_put_of_suite_sql_is_refused_when_no_connection_allows_it(
    client: AsyncClient,
) -> None:
    query = "SELECT * FROM {batch} WHERE species IS NULL"
    suite = {
        "expectations": [
            {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": query}}
        ]
    }
    name = unique_name()
    response = await client.put(f"/v1/suites/{name}", json=suite)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == (
        f'suite "{name}": expectations[0] (unexpected_rows_expectation) runs its own SQL, which '
        "no connection allows (DATAGATE_SUITE_SQL_CONNECTIONS is empty)"
    )


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("SELECT 1; COMMIT; CREATE TABLE t (x int)", "one statement only"),
        ("DELETE FROM {batch}", "only a SELECT"),
        ("SELECT '{batch.__init__.__globals__}'", "the only placeholder is {batch}"),
    ],
)
async def test_put_of_suite_sql_that_is_not_one_select_is_refused(
    client: AsyncClient, query: str, problem: str
) -> None:
    suite = {
        "expectations": [
            {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": query}}
        ]
    }
    response = await client.put(f"/v1/suites/{unique_name()}", json=suite)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "expectations[0] (unexpected_rows_expectation): kwargs.unexpected_rows_query" in message
    assert problem in message


async def test_infer_takes_its_options_as_form_fields(client: AsyncClient) -> None:
    penguins = (EXAMPLES / "penguins.csv").read_bytes()
    response = await client.post(
        "/v1/suites/infer",
        files={"data": ("penguins.csv", penguins)},
        data={"false_alarm_rate": "0.001", "row_count": "false", "max_set_size": "2"},
    )
    assert response.status_code == 200, response.text
    suite = response.json()
    options = suite["meta"]["inferred"]["options"]
    assert (options["false_alarm_rate"], options["row_count"], options["max_set_size"]) == (
        0.001,
        False,
        2,
    )
    types = [e["type"] for e in suite["expectations"]]
    assert "expect_table_row_count_to_be_between" not in types
    # island has 3 values: over max_set_size 2, so no set; sex has 2 and keeps one.
    sets = {e["kwargs"]["column"] for e in suite["expectations"] if e["type"].endswith("_in_set")}
    assert "island" not in sets and "sex" in sets
    rules = [
        e["meta"]["datagate"]["allowance"] for e in suite["expectations"] if "datagate" in e["meta"]
    ]
    assert rules and sum(rule["alpha"] for rule in rules) == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"false_alarm_rate": "2"}, "false_alarm_rate"),
        ({"false_alarm_rate": "often"}, "false_alarm_rate"),
        ({"row_count": "maybe"}, "row_count"),
        ({"row_count_min": "10", "row_count_max": "5"}, "row_count_max must be at least"),
        ({"tail_share": "0"}, "tail_share"),
    ],
)
async def test_infer_refuses_a_bad_option_naming_it(
    client: AsyncClient, fields: dict[str, str], named: str
) -> None:
    response = await client.post(
        "/v1/suites/infer", files={"data": ("d.csv", b"a\n1\n2\n")}, data=fields
    )
    assert response.status_code == 422
    assert named in response.json()["error"]["message"]


async def test_a_clean_test_split_passes_the_suite_inferred_from_its_training_split(
    client: AsyncClient,
) -> None:
    """The calibrated allowance is applied when the service validates (issue 13, item 6)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=3)
    train, test = frame.iloc[:455], frame.iloc[455:]
    inferred = await client.post(
        "/v1/suites/infer", files={"data": ("train.csv", train.to_csv(index=False).encode())}
    )
    assert inferred.status_code == 200, inferred.text
    name = unique_name("split")
    assert (await client.put(f"/v1/suites/{name}", json=inferred.json())).status_code == 201
    clean = await validate(client, test.to_csv(index=False).encode(), name)
    assert clean["status"] == "passed", [c for c in clean["checks"] if not c["success"]]
    # Grams for kilograms, as it were: a tenth of one column divided by 1000 fails, by name.
    broken = test.copy()
    broken.loc[broken.index[:12], "mean area"] /= 1000
    bad = await validate(client, broken.to_csv(index=False).encode(), name)
    assert bad["status"] == "failed"
    assert {c["column"] for c in bad["checks"] if c["outcome"] == "failed"} == {"mean area"}
    await client.delete(f"/v1/suites/{name}")
