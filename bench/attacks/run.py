"""Replay issue 18's attacks, and variants of them, from outside against real servers.

`python -m bench.attacks.run [name-substring ...]` starts `datagate serve` (PostgreSQL store, a
superuser and a read-only SQL connection, a callback receiver) and prints one line per attack:
name, the defence expected, what was observed, PASS or FAIL. Exit status 1 if any attack works.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.attacks import fixtures
from bench.common import peak_rss_mib, running_server

WRITE_KEY = "attack-write-key-0123456789"
READ_KEY = "attack-read-key-0123456789"
CHECK_TIMEOUT_S = 3
PENGUINS = (Path(__file__).resolve().parents[2] / "examples" / "penguins.csv").read_bytes()


@dataclass
class Target:
    url: str
    pid: int
    db: fixtures.Databases
    receiver: fixtures.Receiver
    client: httpx.Client

    def put_suite(self, name: str, suite: Any) -> httpx.Response:
        body = suite if isinstance(suite, bytes | str) else json.dumps(suite)
        return self.client.put(
            f"/v1/suites/{name}", content=body, headers={"content-type": "application/json"}
        )

    def upload(
        self,
        data: bytes,
        filename: str = "data.csv",
        *,
        suite: str = "penguins",
        timeout: float = 120,
        **fields: str,
    ) -> httpx.Response:
        return self.client.post(
            "/v1/validations",
            files={"data": (filename, data)},
            data={"suite": suite, **fields},
            timeout=timeout,
        )

    def reference(self, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
        return self.client.post("/v1/validations", json=body, timeout=timeout)


@dataclass
class Outcome:
    observed: str
    defended: bool


Attack = Callable[[Target], Outcome]
ATTACKS: list[tuple[str, str, Attack]] = []


def attack(name: str, expected: str) -> Callable[[Attack], Attack]:
    def register(fn: Attack) -> Attack:
        ATTACKS.append((name, expected, fn))
        return fn

    return register


def said(response: httpx.Response) -> str:
    """Status and the start of the error message (or body)."""
    try:
        message = response.json().get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else response.text
    return f"{response.status_code} {' '.join(text.split())[:110]}"


def refused(response: httpx.Response, *codes: int) -> Outcome:
    return Outcome(said(response), response.status_code in (codes or (403, 413, 422)))


def expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def suite_of(*expectations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "x", "expectations": list(expectations), "meta": {}, **extra}


# --- code execution through suites -------------------------------------------------------------

SHELL = '@pd.compat.os.system("id > /tmp/datagate_attack_pwned")'


def _condition_attack(target: Target, name: str, **kwargs: Any) -> Outcome:
    marker = Path("/tmp/datagate_attack_pwned")
    marker.unlink(missing_ok=True)
    suite = suite_of(expectation("expect_column_values_to_not_be_null", column="species", **kwargs))
    put = target.put_suite(name, suite)
    if put.status_code < 300:
        target.upload(PENGUINS, suite=name)
    ran = marker.exists()
    return Outcome(f"PUT {said(put)}; shell ran: {ran}", put.status_code == 422 and not ran)


for _parser in ("pandas", "python", "spark", None):
    attack(f"row_condition {_parser} parser runs a shell command", "422 at PUT, nothing runs")(
        lambda t, p=_parser: _condition_attack(
            t,
            f"cond_{p}",
            row_condition=SHELL,
            **({"condition_parser": p} if p else {}),
        )
    )

for _label, _condition in {
    "GE grammar with an appended call": f'col("species") == "x" or {SHELL}',
    "GE grammar, backtick in the column": "col(\"a` + @pd.compat.os.system('id') + `\") == 1",
    "GE grammar, quote inside the value": 'col("species") == "x\\" + @pd.compat.os.system("id")',
    "GE grammar, newline then code": f'col("species") == "x"\n{SHELL}',
}.items():
    attack(f"row_condition {_label}", "422 at PUT, nothing runs")(
        lambda t, c=_condition: _condition_attack(
            t, "cond_gx", row_condition=c, condition_parser="great_expectations"
        )
    )


@attack("row_condition pass_through object", "422 at PUT")
def _pass_through(target: Target) -> Outcome:
    return _condition_attack(
        target, "cond_obj", row_condition={"type": "pass_through", "pass_through_filter": SHELL}
    )


@attack("row_condition at the expectation's top level", "422 at PUT (unknown key)")
def _top_level_condition(target: Target) -> Outcome:
    marker = Path("/tmp/datagate_attack_pwned")
    marker.unlink(missing_ok=True)
    item = {
        **expectation("expect_column_values_to_not_be_null", column="species"),
        "row_condition": SHELL,
        "condition_parser": "pandas",
    }
    put = target.put_suite("cond_top", suite_of(item))
    if put.status_code < 300:
        target.upload(PENGUINS, suite="cond_top")
    ran = marker.exists()
    return Outcome(f"PUT {said(put)}; shell ran: {ran}", not ran)


@attack("json_schema $ref to a local port (SSRF from the worker)", "no connection to the port")
def _json_schema_ref(target: Target) -> Outcome:
    before = len(target.receiver.trap_connections)
    schema = {"$ref": f"http://127.0.0.1:{target.receiver.trap_port}/schema.json"}
    data = b'doc\n"{""a"": 1}"\n'
    suite = suite_of(
        expectation("expect_column_values_to_match_json_schema", column="doc", json_schema=schema)
    )
    put = target.put_suite("schema_ref", suite)
    run = target.upload(data, suite="schema_ref") if put.status_code < 300 else put
    time.sleep(0.5)
    reached = len(target.receiver.trap_connections) - before
    return Outcome(f"PUT {put.status_code}, run {said(run)}; port reached {reached}x", reached == 0)


@attack("json_schema $schema naming a local URL", "no connection to the port")
def _json_schema_meta(target: Target) -> Outcome:
    before = len(target.receiver.trap_connections)
    schema = {
        "$schema": f"http://127.0.0.1:{target.receiver.trap_port}/meta.json",
        "type": "object",
    }
    suite = suite_of(
        expectation("expect_column_values_to_match_json_schema", column="doc", json_schema=schema)
    )
    put = target.put_suite("schema_meta", suite)
    run = (
        target.upload(b'doc\n"{""a"": 1}"\n', suite="schema_meta") if put.status_code < 300 else put
    )
    time.sleep(0.5)
    reached = len(target.receiver.trap_connections) - before
    return Outcome(
        f"PUT {put.status_code}, run {run.status_code}; port reached {reached}x", reached == 0
    )


@attack("suite parameter arithmetic ($PARAMETER 9^9^9^9)", "422 at PUT")
def _suite_parameter(target: Target) -> Outcome:
    suite = suite_of(
        expectation(
            "expect_column_values_to_be_between",
            column="year",
            min_value={"$PARAMETER": "9^9^9^9"},
        )
    )
    return refused(target.put_suite("param", suite), 422)


# --- SQL through suites and references ---------------------------------------------------------

WRITE_SQL = (
    "SELECT * FROM {batch} WHERE false; COMMIT; BEGIN READ WRITE; "
    "CREATE TABLE pwned_by_suite (x int); INSERT INTO victim VALUES ('suite was here')"
)


def _suite_sql(target: Target, connection: str, name: str, query: str) -> Outcome:
    """The suite must be refused at PUT, or the database must refuse the write."""
    before = fixtures.victim_rows(target.db.victim_url)
    suite = suite_of(expectation("unexpected_rows_expectation", unexpected_rows_query=query))
    put = target.put_suite(name, suite)
    run = said(put)
    if put.status_code < 300:
        run = said(
            target.reference(
                {"data": {"connection": connection, "table": "features"}, "suite": name}
            )
        )
    after = fixtures.victim_rows(target.db.victim_url)
    # A server function runs whatever the transaction: only a refusal at PUT defends.
    calls_function = "pg_" in query or "set_config" in query
    return Outcome(
        f"PUT {put.status_code}, run {run}; store changed: {before != after}",
        before == after and (put.status_code == 422 or not calls_function),
    )


for _conn in ("super", "reader", "off"):
    attack(
        f"suite SQL ; COMMIT; BEGIN READ WRITE; INSERT ({_conn} connection)", "refused, no write"
    )(lambda t, c=_conn: _suite_sql(t, c, f"sqlw_{c}", WRITE_SQL))

for _label, _query in {
    "';' hidden after a -- comment": (
        "SELECT * FROM {batch} WHERE false -- x\n; INSERT INTO victim VALUES ('c')"
    ),
    "data-modifying CTE": (
        "WITH w AS (INSERT INTO victim VALUES ('cte') RETURNING 1) SELECT * FROM {batch}, w"
    ),
    "SELECT INTO a new table": "SELECT * INTO pwned_select_into FROM {batch}",
    "set_config transaction_read_only off": (
        "SELECT * FROM {batch} WHERE set_config('transaction_read_only', 'off', true) = 'x'"
    ),
    "placeholder walking Python objects": "SELECT * FROM {batch.__init__.__globals__}",
    "pg_advisory_lock held by the warehouse": (
        "SELECT * FROM {batch} WHERE pg_advisory_lock(42) IS NULL"
    ),
    "set_config statement_timeout 0": (
        "SELECT * FROM {batch} WHERE set_config('statement_timeout', '0', true) = 'x'"
    ),
}.items():
    attack(f"suite SQL {_label} (super)", "refused, no write")(
        lambda t, q=_query: _suite_sql(t, "super", "sqlv", q)
    )


@attack("suite SQL pg_read_file via unexpected rows (super)", "422 at PUT, the file is not read")
def _suite_sql_read_file(target: Target) -> Outcome:
    query = "SELECT pg_read_file('/etc/passwd') AS leak FROM {batch} LIMIT 1"
    suite = suite_of(expectation("unexpected_rows_expectation", unexpected_rows_query=query))
    put = target.put_suite("sqlfile", suite)
    text = said(put)
    body = ""
    if put.status_code < 300:
        run = target.reference(
            {"data": {"connection": "super", "table": "features"}, "suite": "sqlfile"}
        )
        text, body = said(run), run.text
    leaked = "root:" in body
    # A run that ends "failed" read the file (its rows came back), shown or not.
    return Outcome(
        f"PUT {put.status_code}, run {text}; /etc/passwd leaked: {leaked}", put.status_code == 422
    )


def _query_ref(target: Target, connection: str, query: str) -> Outcome:
    response = target.reference(
        {"data": {"connection": connection, "query": query}, "suite": "noop"}
    )
    leaked = "root:" in response.text
    return Outcome(
        said(response) + (" LEAKED /etc/passwd" if leaked else ""),
        response.status_code == 422 and not leaked,
    )


for _label, _query in {
    "pg_read_file": "SELECT pg_read_file('/etc/passwd') AS v",
    "PG_CATALOG.PG_READ_FILE upper case": "SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd') AS v",
    '"pg_read_file" quoted': "SELECT \"pg_read_file\"('/etc/passwd') AS v",
    "pg_read_binary_file": "SELECT encode(pg_read_binary_file('/etc/passwd'), 'escape') AS v",
    "query_to_xml running a string": (
        "SELECT query_to_xml('select pg_read_file(''/etc/passwd'')', true, true, '') AS v"
    ),
    "set_config": "SELECT set_config('statement_timeout', '0', false) AS v",
    "pg_advisory_lock": "SELECT pg_advisory_lock(42) AS v",
    "pg_cancel_backend": "SELECT pg_cancel_backend(pg_backend_pid()) AS v",
    "lo_import": "SELECT lo_import('/etc/passwd') AS v",
    "two statements": "SELECT 1 AS v; INSERT INTO victim VALUES ('q')",
    "';' inside a comment then statement": "SELECT 1 AS v /* ; */ ; DELETE FROM victim",
    "dollar-quoted body hiding a call": "SELECT $$x$$ AS v, pg_read_file('/etc/passwd') AS w",
    "E-string escape hiding a call": "SELECT E'\\'' AS v, pg_read_file('/etc/passwd') AS w -- '",
    "Unicode-escaped identifier": "SELECT U&\"pg_read_fil\\0065\"('/etc/passwd') AS v",
    "COPY TO PROGRAM": "COPY (SELECT 1) TO PROGRAM 'id'",
    "data-modifying CTE": "WITH w AS (INSERT INTO victim VALUES ('q') RETURNING 1) SELECT * FROM w",
}.items():
    attack(f"query reference {_label} (super)", "422, nothing read or written")(
        lambda t, q=_query: _query_ref(t, "super", q)
    )


@attack("query reference data-modifying CTE (reader)", "refused (read-only role), no write")
def _cte_reader(target: Target) -> Outcome:
    before = fixtures.victim_rows(target.db.victim_url)
    response = target.reference(
        {
            "data": {
                "connection": "reader",
                "query": "WITH w AS (INSERT INTO victim VALUES ('q') RETURNING 1) SELECT * FROM w",
            },
            "suite": "noop",
        }
    )
    after = fixtures.victim_rows(target.db.victim_url)
    return Outcome(
        f"{said(response)}; changed: {before != after}",
        before == after and response.status_code >= 400,
    )


@attack("sqlite connection to a missing file", "404, file not created")
def _sqlite_missing(target: Target) -> Outcome:
    path = Path(tempfile.gettempdir()) / "datagate_attack_missing.db"
    response = target.reference({"data": {"connection": "lite", "table": "t"}, "suite": "noop"})
    return Outcome(
        f"{said(response)}; created: {path.exists()}",
        not path.exists() and response.status_code == 404,
    )


# --- poison pills ------------------------------------------------------------------------------


def _queued_behind(target: Target, poison: Callable[[], httpx.Response]) -> Outcome:
    """Queue the poison pill and then an innocent job; the innocent one must finish."""
    bad = poison()
    good = target.upload(PENGUINS, "good.csv", wait="false")
    if good.status_code != 202:
        return Outcome(f"poison {said(bad)}; innocent job not queued: {said(good)}", False)
    status = "?"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = target.client.get(good.json()["status_url"]).json()["status"]
        if status in ("done", "error"):
            break
        time.sleep(0.5)
    bad_status = ""
    if bad.status_code == 202:
        state = target.client.get(bad.json()["status_url"]).json()
        bad_status = f" -> {state['status']} {(state.get('error') or '')[:60]}"
    return Outcome(
        f"poison {said(bad)}{bad_status}; innocent job behind it: {status}",
        status == "done" and bad.status_code in (202, 422),
    )


@attack(
    "NUL in dataset_name, async, PG store, job queued behind",
    "422 (or error report); next job done",
)
def _nul_dataset_name(target: Target) -> Outcome:
    return _queued_behind(
        target, lambda: target.upload(PENGUINS, dataset_name="a\x00b", wait="false")
    )


@attack("NUL in the upload's file name, async", "422 or stored safely; next job done")
def _nul_filename(target: Target) -> Outcome:
    return _queued_behind(target, lambda: target.upload(PENGUINS, "a\x00b.csv", wait="false"))


@attack("NUL in a CSV column name and cell, async", "report stored; next job done")
def _nul_in_data(target: Target) -> Outcome:
    data = PENGUINS.replace(b"species", b"spe\x00cies", 1).replace(b"Adelie", b"Ade\x00lie", 3)
    return _queued_behind(target, lambda: target.upload(data, "nul.csv", wait="false"))


@attack("invalid UTF-8 in label and CSV header, async", "422 or stored safely; next job done")
def _bad_utf8(target: Target) -> Outcome:
    data = PENGUINS.replace(b"species", b"spe\xffcies", 1)
    return _queued_behind(
        target,
        lambda: target.upload(
            data,
            "bad.csv",
            wait="false",
            label="spe\udcffcies".encode("utf-8", "surrogatepass").decode("latin-1"),
        ),
    )


@attack("NUL in label / thresholds key (sync)", "422 naming the field")
def _nul_fields(target: Target) -> Outcome:
    outcomes = [
        target.upload(PENGUINS, label="a\x00"),
        target.upload(PENGUINS, thresholds='{"max_\\u0000": 1}'),
        target.upload(PENGUINS, callback_url="http://127.0.0.1/\x00"),
    ]
    return Outcome(
        "; ".join(said(r)[:60] for r in outcomes), all(400 <= r.status_code < 500 for r in outcomes)
    )


@attack("NUL in reference uri / table / query params (JSON body)", "422 naming the field")
def _nul_reference(target: Target) -> Outcome:
    outcomes = [
        target.reference({"data": {"uri": "file:///tmp/a\u0000.csv"}, "suite": "penguins"}),
        target.reference(
            {"data": {"connection": "reader", "table": "fea\u0000tures"}, "suite": "noop"}
        ),
        target.reference(
            {
                "data": {
                    "connection": "reader",
                    "query": "select * from features where name = :n",
                    "params": {"n": "a\u0000"},
                },
                "suite": "noop",
            }
        ),
        target.client.post(
            "/v1/validations",
            content=b'{"data": {"connection": "reader", "table": "features", "name": "\\ud800"}, '
            b'"suite": "noop"}',
            headers={"content-type": "application/json"},
        ),
    ]
    return Outcome(
        "; ".join(said(r)[:50] for r in outcomes), all(400 <= r.status_code < 500 for r in outcomes)
    )


@attack("NUL in history filters and ids (PG store reads)", "4xx or empty, never 500")
def _nul_reads(target: Target) -> Outcome:
    paths = [
        "/v1/reports?q=%00",
        "/v1/reports?dataset=a%00",
        "/v1/reports?suite=%00",
        "/v1/reports/%00",
        "/v1/validations/%00",
        "/reports?q=%00",
        "/reports/%00",
        "/v1/suites/%00",
        "/v1/reports?q=%ff",
    ]
    codes = {}
    for path in paths:
        try:
            codes[path] = target.client.get(path).status_code
        except httpx.TransportError:
            codes[path] = 599  # the server dropped the connection: an unhandled error
    bad = {p: c for p, c in codes.items() if c >= 500}
    return Outcome(f"{sorted(set(codes.values()))}" + (f" 5xx: {bad}" if bad else ""), not bad)


@attack("NUL in a suite name and in a suite's text", "422, or stored escaped and readable")
def _nul_suite(target: Target) -> Outcome:
    named = target.put_suite("a%00b", suite_of())
    column = target.put_suite(
        "nulsuite", suite_of(expectation("expect_column_values_to_not_be_null", column="a\x00"))
    )
    meta = target.put_suite("nulmeta", {"name": "x", "expectations": [], "meta": {"k\u0000": "v"}})
    reads = [target.client.get(f"/v1/suites/{n}") for n in ("nulsuite", "nulmeta", "")]
    codes = [r.status_code for r in (named, column, meta, *reads)]
    return Outcome(
        f"PUT {named.status_code}/{column.status_code}/{meta.status_code}; "
        f"GET {[r.status_code for r in reads]}",
        named.status_code == 422 and all(c < 500 for c in codes),
    )


# --- resource exhaustion -----------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@attack("suite meta nested 900 levels", "422 at PUT, service still validates")
def _deep_meta(target: Target) -> Outcome:
    text = (
        '{"name": "x", "expectations": [{"type": "expect_column_values_to_not_be_null", '
        '"kwargs": {"column": "species"}, "meta": {"m": ' + _nested(900) + '}}], "meta": {}}'
    )
    first = target.put_suite("deep", text)
    second = target.put_suite(
        "deep2", text.replace('"meta": {}}', '"meta": {"n": ' + _nested(900) + "}}")
    )
    third = target.put_suite(
        "deep3",
        text.replace(
            '{"column": "species"}', '{"column": "species", "value_set": ' + _nested(900) + "}"
        ),
    )
    check = target.upload(PENGUINS, timeout=60)
    return Outcome(
        f"PUT {first.status_code}/{second.status_code}/{third.status_code}; "
        f"then validation {check.status_code}",
        all(r.status_code == 422 for r in (first, second, third)) and check.status_code == 200,
    )


def _regex_attack(target: Target, name: str, item: dict[str, Any]) -> Outcome:
    data = b"s\n" + b"\n".join([b"a" * 41 + b"!"] * 3) + b"\n"
    put = target.put_suite(name, suite_of(item, expectation("expect_column_to_exist", column="s")))
    started = time.monotonic()
    run = target.upload(data, suite=name, timeout=120)
    took = time.monotonic() - started
    error_rows = 0
    if run.status_code == 200:
        error_rows = sum(1 for c in run.json()["checks"] if c.get("outcome") == "error")
    return Outcome(
        f"PUT {put.status_code}; run {run.status_code} in {took:.1f} s, error rows {error_rows}",
        run.status_code == 200 and took < CHECK_TIMEOUT_S * 4 + 10,
    )


for _label, _item in {
    "match_regex": expectation("expect_column_values_to_match_regex", column="s", regex="^(a+)+$"),
    "not_match_regex": expectation(
        "expect_column_values_to_not_match_regex", column="s", regex="^(a+)+$"
    ),
    "match_regex_list": expectation(
        "expect_column_values_to_match_regex_list", column="s", regex_list=["^(a|aa)+$"]
    ),
    "json_schema pattern": expectation(
        "expect_column_values_to_match_json_schema",
        column="s",
        json_schema={"type": "string", "pattern": "^(a+)+$"},
    ),
}.items():
    attack(f"catastrophic regex ({_label})", f"answer within ~{CHECK_TIMEOUT_S} s per check")(
        lambda t, i=_item: _regex_attack(t, "regex", i)
    )


@attack("10,000-expectation suite", "422 at PUT")
def _huge_suite(target: Target) -> Outcome:
    items = [expectation("expect_column_to_exist", column=f"c{i}") for i in range(10_000)]
    return refused(target.put_suite("huge", suite_of(*items)), 422, 413)


@attack("suite body over 10 MiB", "413 at PUT")
def _big_suite(target: Target) -> Outcome:
    text = json.dumps(
        suite_of(expectation("expect_column_to_exist", column="x" * (11 * 1024 * 1024)))
    )
    return refused(target.put_suite("big", text), 413, 422)


def _upload_limit(
    target: Target, data: bytes, filename: str, codes: tuple[int, ...], **fields: str
) -> Outcome:
    started = time.monotonic()
    response = target.upload(data, filename, timeout=300, **fields)
    took = time.monotonic() - started
    ready = target.client.get("/readyz").status_code
    return Outcome(
        f"{said(response)[:90]} in {took:.1f} s; readyz {ready}",
        response.status_code in codes and ready == 200,
    )


attack("NDJSON nested 100,000 deep", "422, worker alive")(
    lambda t: _upload_limit(t, fixtures.deep_ndjson(), "deep.ndjson", (422,))
)
attack("JSON array nested 100,000 deep", "422, worker alive")(
    lambda t: _upload_limit(t, fixtures.deep_json_array(), "deep.json", (422,))
)


@attack(
    "Parquet bomb (5M x 1,000 chars, dictionary + zstd)", "413, or read small (workers < 1.5 GiB)"
)
def _parquet_bomb(target: Target) -> Outcome:
    outcome = _upload_limit(target, fixtures.parquet_bomb(5_000_000), "bomb.parquet", (200, 413))
    workers = max((peak_rss_mib(pid) for pid in _children(target.pid)), default=0.0)
    return Outcome(
        f"{outcome.observed}; worker peak {workers:.0f} MiB", outcome.defended and workers < 1536
    )


attack("Arrow IPC bomb (5M x 1,000 chars, zstd)", "413 (decoded-bytes limit)")(
    lambda t: _upload_limit(t, fixtures.arrow_bomb(5_000_000), "bomb.arrow", (413,))
)
attack("100,000-column CSV", "422 (column limit)")(
    lambda t: _upload_limit(t, fixtures.wide_csv(), "wide.csv", (422, 413))
)
attack("20,000-column Parquet", "422 (column limit)")(
    lambda t: _upload_limit(t, fixtures.wide_parquet(), "wide.parquet", (422, 413))
)
attack("100,000-key JSON records", "422 (column limit)")(
    lambda t: _upload_limit(t, fixtures.wide_json_records(), "wide.json", (422, 413))
)


@attack("suite inference from a 100,000-column CSV", "422 (column limit), quickly")
def _wide_infer(target: Target) -> Outcome:
    started = time.monotonic()
    response = target.client.post(
        "/v1/suites/infer", files={"data": ("wide.csv", fixtures.wide_csv())}, timeout=300
    )
    took = time.monotonic() - started
    return Outcome(
        f"{said(response)[:90]} in {took:.1f} s", response.status_code in (413, 422) and took < 60
    )


@attack("CSV with a 2 MB cell", "200 (valid file)")
def _big_cell(target: Target) -> Outcome:
    data = b"species,note\nAdelie," + b"y" * 2_000_000 + b"\n"
    suite = suite_of(expectation("expect_column_to_exist", column="note"))
    target.put_suite("bigcell", suite)
    return refused(target.upload(data, "cell.csv", suite="bigcell"), 200)


@attack(
    "abandoned sync validation (client gone after 2 s)", "cancelled: next request answers quickly"
)
def _abandoned(target: Target) -> Outcome:
    rows = b"s\n" + b"\n".join([b"a" * 41 + b"!"] * 40) + b"\n"
    # 40 checks of CHECK_TIMEOUT_S each: left running, a job holds its worker for 120 s.
    items = [
        expectation("expect_column_values_to_match_regex", column="s", regex="^(a+)+$")
        for _ in range(40)
    ]
    target.put_suite("slow", suite_of(*items))
    for _ in range(1):  # one per worker (DATAGATE_WORKERS=1)
        with contextlib.suppress(httpx.TimeoutException):
            target.upload(rows, suite="slow", timeout=2)
    started = time.monotonic()
    response = target.upload(PENGUINS, timeout=300)
    took = time.monotonic() - started
    # Cancelled, the workers are replaced (a fresh worker imports its engines: slow on a busy
    # machine); left running, the next request would wait over 100 s.
    return Outcome(
        f"next request {response.status_code} after {took:.1f} s",
        response.status_code == 200 and took < 100,
    )


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@attack("kill -9 of every idle worker", "readyz 503 or respawned; next validation 200")
def _kill_workers(target: Target) -> Outcome:
    workers = _children(target.pid)
    for pid in workers:
        os.kill(pid, 9)
    time.sleep(1)
    ready = target.client.get("/readyz").status_code
    response = target.upload(PENGUINS, timeout=120)
    return Outcome(
        f"killed {len(workers)}; readyz {ready}; next validation {response.status_code}",
        response.status_code == 200 and bool(workers),
    )


# --- web ---------------------------------------------------------------------------------------


def _signed_in(target: Target) -> httpx.Client:
    browser = httpx.Client(base_url=target.url, timeout=60)
    browser.post("/login", data={"key": WRITE_KEY})
    return browser


@attack("sign-in cookie holds the key", "a session token, not the key")
def _cookie_value(target: Target) -> Outcome:
    browser = _signed_in(target)
    values = list(browser.cookies.values())
    browser.close()
    return Outcome(
        f"cookies {len(values)}; holds key: {any(WRITE_KEY in v for v in values)}",
        bool(values) and not any(WRITE_KEY in v for v in values),
    )


@attack("CSRF: cookie + cross-origin POST/PUT/DELETE/infer", "refused (cookie only reads)")
def _csrf(target: Target) -> Outcome:
    browser = _signed_in(target)
    evil = {"origin": "http://127.0.0.1:1"}
    outcomes = {
        "post": browser.post(
            "/v1/validations",
            files={"data": ("d.csv", PENGUINS)},
            data={"suite": "penguins"},
            headers=evil,
        ),
        "post-no-origin": browser.post(
            "/v1/validations", files={"data": ("d.csv", PENGUINS)}, data={"suite": "penguins"}
        ),
        "post-null": browser.post(
            "/v1/validations",
            files={"data": ("d.csv", PENGUINS)},
            data={"suite": "penguins"},
            headers={"origin": "null"},
        ),
        "put": browser.put(
            "/v1/suites/csrf",
            content=json.dumps(suite_of()),
            headers={**evil, "content-type": "text/plain"},
        ),
        "delete": browser.delete("/v1/suites/penguins", headers=evil),
        "infer": browser.post(
            "/v1/suites/infer", files={"data": ("d.csv", PENGUINS)}, headers=evil
        ),
        "same-origin-put": browser.put(
            "/v1/suites/csrf", content=json.dumps(suite_of()), headers={"origin": target.url}
        ),
    }
    browser.close()
    bad = {k: r.status_code for k, r in outcomes.items() if r.status_code < 400}
    return Outcome(f"{ {k: r.status_code for k, r in outcomes.items()} }", not bad)


# Wrong keys lock the runner's own address out for a minute (the right key too, by design), so
# these run last, each after the previous lock-out has passed.
LOCKS_OUT = (
    "sign-in brute force (60 wrong keys)",
    "sign-in brute force rotating X-Forwarded-For",
    "key guessing through Authorization: Bearer (60 wrong keys)",
)
LOCKOUT_S = 61


@attack("sign-in brute force (60 wrong keys)", "429 with Retry-After")
def _login_throttle(target: Target) -> Outcome:
    codes = [
        httpx.post(f"{target.url}/login", data={"key": f"wrong-{i:012d}"}).status_code
        for i in range(60)
    ]
    return Outcome(
        f"401 x{codes.count(401)}, 429 x{codes.count(429)}", codes.count(401) <= 10 and 429 in codes
    )


@attack("sign-in brute force rotating X-Forwarded-For", "429 (the header is not the client)")
def _login_xff(target: Target) -> Outcome:
    codes = [
        httpx.post(
            f"{target.url}/login",
            data={"key": f"wrong-{i:012d}"},
            headers={"x-forwarded-for": f"10.9.{i // 250}.{i % 250}"},
        ).status_code
        for i in range(60)
    ]
    return Outcome(f"401 x{codes.count(401)}, 429 x{codes.count(429)}", codes.count(401) <= 10)


@attack("key guessing through Authorization: Bearer (60 wrong keys)", "429 like /login")
def _bearer_throttle(target: Target) -> Outcome:
    codes = [
        httpx.get(
            f"{target.url}/v1/reports", headers={"authorization": f"Bearer wrong-{i:012d}"}
        ).status_code
        for i in range(60)
    ]
    return Outcome(f"401 x{codes.count(401)}, 429 x{codes.count(429)}", codes.count(401) <= 10)


@attack("suite with a NUL column name, then validated (PG store)", "422 at PUT, or a stored report")
def _nul_suite_run(target: Target) -> Outcome:
    put = target.put_suite(
        "nulcol", suite_of(expectation("expect_column_to_exist", column="a\x00"))
    )
    if put.status_code >= 300:
        return Outcome(f"PUT {said(put)}", put.status_code == 422)
    run = target.upload(PENGUINS, suite="nulcol")
    listing = target.client.get("/v1/suites/nulcol")
    return Outcome(
        f"PUT {put.status_code}; run {said(run)[:60]}; GET suite {listing.status_code}",
        run.status_code == 200 and listing.status_code == 200,
    )


def _callback(target: Target, url: str) -> tuple[httpx.Response, list[str]]:
    before = len(target.receiver.hits)
    response = target.upload(PENGUINS, wait="false", callback_url=url)
    if response.status_code == 202:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and target.client.get(
            response.json()["status_url"]
        ).json()["status"] not in ("done", "error"):
            time.sleep(0.3)
        time.sleep(1.5)
    return response, target.receiver.hits[before:]


@attack("callback to an allowed host's other ports and spellings", "403 for each")
def _callback_ports(target: Target) -> Outcome:
    trap = target.receiver.trap_port
    before = len(target.receiver.trap_connections)
    urls = [
        f"http://127.0.0.1:{trap}/",
        f"http://localhost:{target.receiver.port}/",
        f"http://0.0.0.0:{trap}/",
        f"http://[::1]:{trap}/",
        f"http://[::ffff:127.0.0.1]:{trap}/",
        f"http://2130706433:{trap}/",
        f"http://127.1:{trap}/",
        f"http://127.0.0.1:{target.receiver.port}@127.0.0.1:{trap}/",
        f"http://127.0.0.1:{trap}\\@127.0.0.1:{target.receiver.port}/",
        f"http://127.0.0.1:{target.receiver.port}#@127.0.0.1:{trap}/",
        f"gopher://127.0.0.1:{target.receiver.port}/",
    ]
    codes = [target.upload(PENGUINS, wait="false", callback_url=u).status_code for u in urls]
    time.sleep(3)
    reached = len(target.receiver.trap_connections) - before
    accepted = [u for u, c in zip(urls, codes, strict=True) if c < 400]
    ok = reached == 0 and all(
        u.startswith(f"http://127.0.0.1:{target.receiver.port}") for u in accepted
    )
    return Outcome(f"codes {codes}; trap port reached {reached}x", ok)


@attack("callback answered with 307 to another port", "redirect not followed")
def _callback_redirect(target: Target) -> Outcome:
    before = len(target.receiver.trap_connections)
    response, hits = _callback(target, f"http://127.0.0.1:{target.receiver.port}/redirect")
    reached = len(target.receiver.trap_connections) - before
    return Outcome(
        f"{response.status_code}; receiver hits {hits}; trap reached {reached}x",
        reached == 0 and bool(hits),
    )


@attack(
    "Host / X-Forwarded-Host / Forwarded poisoning report links", "report_url and Location relative"
)
def _host_header(target: Target) -> Outcome:
    headers = {
        "host": "evil.example",
        "x-forwarded-host": "evil2.example",
        "forwarded": "host=evil3.example;proto=https",
        "x-forwarded-proto": "https",
    }
    sync = target.client.post(
        "/v1/validations",
        files={"data": ("d.csv", PENGUINS)},
        data={"suite": "penguins"},
        headers=headers,
    )
    queued = target.client.post(
        "/v1/validations",
        files={"data": ("d.csv", PENGUINS)},
        data={"suite": "penguins", "wait": "false"},
        headers=headers,
    )
    texts = [sync.text, queued.text, queued.headers.get("location", "")]
    if sync.status_code == 200:
        texts.append(target.client.get(f"/reports/{sync.json()['id']}").text)
        texts.append(target.client.get(f"/v1/reports/{sync.json()['id']}").text)
    poisoned = [
        h for h in ("evil.example", "evil2.example", "evil3.example") if any(h in t for t in texts)
    ]
    return Outcome(
        f"sync {sync.status_code}, async {queued.status_code}; hosts echoed: {poisoned}",
        not poisoned and sync.status_code == 200,
    )


@attack("script in a column name, deepchecks artifact and pages", "escaped everywhere")
def _xss_column(target: Target) -> Outcome:
    payload = "<script>alert(1)</script>"
    data = PENGUINS.replace(b"island", payload.encode(), 1)
    response = target.client.post(
        "/v1/validations",
        files={"data": ("d.csv", data), "reference": ("r.csv", data)},
        data={"suite": "noop", "label": "species"},
        timeout=300,
    )
    if response.status_code != 200:
        return Outcome(f"validation {said(response)}", False)
    report = response.json()
    pages = [target.client.get(f"/reports/{report['id']}").text, target.client.get("/reports").text]
    artifact = (report.get("artifacts") or {}).get("deepchecks_html")
    headers = ""
    if artifact:
        page = target.client.get(artifact)
        pages.append(page.text)
        headers = page.headers.get("content-security-policy", "")
    raw = [i for i, p in enumerate(pages) if payload in p]
    return Outcome(
        f"artifact {bool(artifact)}; raw payload in pages {raw}; sandbox {'sandbox' in headers}",
        not raw and bool(artifact),
    )


@attack("HEAD on GET routes", "200 without a body")
def _head(target: Target) -> Outcome:
    codes = [
        target.client.head(p).status_code
        for p in ("/healthz", "/reports", "/v1/reports", "/v1/suites")
    ]
    return Outcome(f"{codes}", all(c == 200 for c in codes))


# --- the run ------------------------------------------------------------------------------------

NOOP_SUITE = suite_of(expectation("expect_table_row_count_to_be_between", min_value=0))


def main(selected: list[str]) -> int:
    attacks = [a for a in ATTACKS if not selected or any(s in a[0] for s in selected)]
    attacks.sort(key=lambda a: a[0] in LOCKS_OUT)
    with (
        tempfile.TemporaryDirectory(prefix="datagate-attacks-") as tmp,
        fixtures.databases() as db,
        fixtures.callback_receiver() as receiver,
    ):
        workdir = Path(tmp)
        (workdir / "expectations").mkdir()
        (workdir / "expectations" / "penguins.json").write_bytes(
            (Path(__file__).resolve().parents[2] / "expectations" / "penguins.json").read_bytes()
        )
        env = {
            "DATAGATE_DATABASE_URL": db.store_url,
            "DATAGATE_API_KEYS": f"{WRITE_KEY}:write,{READ_KEY}:read",
            "DATAGATE_WORKERS": "1",
            "DATAGATE_CONNECTIONS": json.dumps(
                {
                    "super": db.victim_url,
                    "reader": db.reader_url,
                    "off": db.reader_url,
                    "lite": f"sqlite:///{tempfile.gettempdir()}/datagate_attack_missing.db",
                }
            ),
            "DATAGATE_SQL_ALLOW_WRITABLE_ROLE": "true",
            "DATAGATE_SUITE_SQL_CONNECTIONS": "super,reader",
            "DATAGATE_CALLBACK_HOSTS": f"http://127.0.0.1:{receiver.port}",
            "DATAGATE_CHECK_TIMEOUT_S": str(CHECK_TIMEOUT_S),
            "DATAGATE_JOB_POLL_S": "0.2",
        }
        with running_server(workdir, ready_within_s=300, **env) as (url, process):
            client = httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {WRITE_KEY}"}, timeout=120
            )
            target = Target(url=url, pid=process.pid, db=db, receiver=receiver, client=client)
            target.put_suite("noop", NOOP_SUITE).raise_for_status()
            failures = 0
            locked = False
            for name, expected, fn in attacks:
                if name in LOCKS_OUT:
                    if locked:
                        time.sleep(LOCKOUT_S)
                    locked = True
                try:
                    outcome = fn(target)
                except Exception as exc:  # an attack that breaks the harness is a finding too
                    outcome = Outcome(f"harness error {type(exc).__name__}: {exc}"[:140], False)
                failures += not outcome.defended
                print(
                    f"{name} | {expected} | {outcome.observed} | "
                    f"{'PASS' if outcome.defended else 'FAIL'}",
                    flush=True,
                )
            client.close()
    print(f"{len(attacks) - failures} PASS, {failures} FAIL")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
