"""The pytest plugin as a project uses it: its own tests check preprocessing outputs with a suite,
in-process or on a server, and a failure lists the failed checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import EXAMPLES, EXPECTATIONS

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["pytester", "tests.server_process"]

PROJECT_TESTS = f"""
import pandas as pd

from app.pytest_plugin import assert_valid


def preprocess(path):
    frame = pd.read_csv(path)
    return frame[frame["island"] != "nowhere"]


def test_clean_features_pass(datagate):
    report = datagate.assert_valid(preprocess(r"{EXAMPLES / "penguins.csv"}"), suite="penguins")
    assert report.status == "passed"


def test_broken_features_fail(datagate):
    datagate.assert_valid(preprocess(r"{EXAMPLES / "penguins_bad.csv"}"), suite="penguins")


def test_the_helper_alone_takes_a_file_path():
    assert_valid(
        r"{EXAMPLES / "penguins.csv"}", suite="penguins", expectations=r"{EXPECTATIONS}"
    )
"""


@pytest.mark.slow
def test_plugin_passes_clean_data_and_lists_failed_checks_locally(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(f"[pytest]\ndatagate_expectations = {EXPECTATIONS}\n")
    pytester.makepyfile(test_features=PROJECT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*DatagateCheckFailed: datagate: FAILED*against suite penguins*",
            "*x ?set? expect_column_values_to_be_in_set column=species (critical)",
            # fnmatch reads [...] as a character class: ? stands for each bracket.
            '*expected: value_set=?"Adelie", "Chinstrap", "Gentoo"?',
            '*observed: 3 of 344 values unexpected*"Emperor" x3',
        ]
    )


def test_plugin_validates_on_a_server_when_given_one(
    pytester: pytest.Pytester, datagate_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAGATE_API_KEY", datagate_server.write_key)
    pytester.makepyfile(test_features=PROJECT_TESTS.split("def test_the_helper_alone")[0])
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--datagate-server={datagate_server.url}"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*x ?range? expect_column_values_to_be_between column=body_mass_g*", "*report: http*"]
    )


def test_plugin_registers_the_fixture_and_its_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--datagate-server*", "*--datagate-expectations*"])
    fixtures = pytester.runpytest_subprocess("--fixtures")
    fixtures.stdout.fnmatch_lines(["datagate*", "*Validate DataFrames with datagate*"])
