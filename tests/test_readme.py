"""The README is the operator's manual: it must name every setting the service reads."""

from __future__ import annotations

from pathlib import Path

from app.core.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    missing = [
        f"DATAGATE_{name.upper()}"
        for name in Settings.model_fields
        if f"`DATAGATE_{name.upper()}`" not in README
    ]
    assert missing == []


def test_readme_keeps_the_two_set_up_commands_that_ci_runs() -> None:
    assert "make serve" in README and "make test" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
