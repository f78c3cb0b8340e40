"""The GitHub Actions workflow: valid, and runs the tests, hadolint and an image build."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.readers import CI_FILE, validate_with_builtin_schema


@pytest.fixture(scope="module")
def steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load(CI_FILE.read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_validates_against_the_github_workflow_schema() -> None:
    result = validate_with_builtin_schema("vendor.github-workflows", CI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_the_readme_test_command(steps: list[dict[str, Any]]) -> None:
    assert any(step.get("run") == "make test" for step in steps)


def test_workflow_lints_the_dockerfile_with_hadolint(steps: list[dict[str, Any]]) -> None:
    assert any("hadolint docker/Dockerfile" in step.get("run", "") for step in steps)


def test_workflow_builds_the_image_from_the_repository_dockerfile(
    steps: list[dict[str, Any]],
) -> None:
    (build,) = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["file"] == "docker/Dockerfile"
    assert build["with"]["context"] == "."
    assert build["with"]["push"] is False
