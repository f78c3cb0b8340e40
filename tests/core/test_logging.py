"""Logs: one JSON object per line when configured, each naming the request it belongs to."""

from __future__ import annotations

import json
import logging

import pytest

from app.core.logging import configure_logging, request_id_var


def test_json_log_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("datagate.test").info("validated %d rows", 344)
    finally:
        request_id_var.reset(token)
        configure_logging("INFO", "text")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "validated 344 rows"
    assert entry["request_id"] == "req-42"
    assert entry["level"] == "INFO"


def test_text_logs_name_the_request_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    token = request_id_var.set("req-7")
    try:
        logging.getLogger("datagate.test").warning("slow")
    finally:
        request_id_var.reset(token)
    assert "[req-7] slow" in capsys.readouterr().err
