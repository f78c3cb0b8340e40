"""The service against its own OpenAPI schema: generated requests never get a 500, and every
response matches what the schema promises (status code, content type, body)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from app.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

# Built at import because `@schema.parametrize()` needs the schema at collection time (the lazy
# `schemathesis.pytest.from_fixture` breaks on pytest 9). Creating the app starts nothing: its
# lifespan (workers, dispatcher) starts with the first generated request.
ROOT = Path(tempfile.mkdtemp(prefix="datagate-schemathesis-"))
APP = create_app(make_settings(ROOT, max_upload_bytes=1_000_000))
# /readyz answers a documented 503 while the first worker imports the engines (the lifespan
# starts with the first generated request): a state, not a server error.
# Two documented allowances for "schema-valid input must be accepted":
# - an upload to POST /v1/validations is schema-valid whatever its bytes (`format: binary`), so a
#   413/415/422 about the file's content, or 404 for an unknown suite, is a correct refusal;
# - a suite PUT is schema-valid with any expectation type and arguments; whether Great
#   Expectations knows the type and accepts the arguments is checked by GE itself (422).
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-method": "GET",
                "include-path": "/readyz",
                "checks": {"not_a_server_error": {"enabled": False}},
            },
            {
                "include-method": "PUT",
                "include-path": "/v1/suites/{name}",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409", "422"]}
                },
            },
            {
                "include-method": "POST",
                "include-path": "/v1/validations",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "404", "413", "415", "422", "503"]
                    }
                },
            },
        ]
    }
)
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app() -> Iterator[None]:
    yield
    asgi.shutdown_lifespans()
    shutil.rmtree(ROOT, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_generated_request_breaks_the_service_or_its_schema(case: Any) -> None:
    # A worker may still be importing the engines when the first requests arrive (the service
    # answers before it is ready): wait for it rather than the default 10 s.
    case.call_and_validate(timeout=180)
