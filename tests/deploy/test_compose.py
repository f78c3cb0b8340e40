"""docker-compose.yml: valid Compose, wired to the image's paths, healthy-gated, stack profile."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.readers import (
    COMPOSE_FILE,
    REPO,
    Stage,
    compose_defaults,
    validate_with_builtin_schema,
)

LONG_RUNNING_RESTART = {"always", "unless-stopped", "on-failure"}


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _is_one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = validate_with_builtin_schema("vendor.compose-spec", COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_datagate_is_built_from_the_repository_dockerfile(services: dict[str, Any]) -> None:
    assert services["datagate"]["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}
    assert "profiles" not in services["datagate"]  # plain `docker compose up` starts it


def test_expectations_are_mounted_read_only_where_the_image_reads_them(
    services: dict[str, Any], runtime: Stage
) -> None:
    target = runtime.env()["DATAGATE_EXPECTATIONS_DIR"]
    assert f"./expectations:{target}:ro" in services["datagate"]["volumes"]


def test_data_dir_is_a_named_volume_at_the_image_data_dir(
    compose: dict[str, Any], services: dict[str, Any], runtime: Stage
) -> None:
    mounts = [mount.split(":") for mount in services["datagate"]["volumes"]]
    named = {parts[0]: parts[1] for parts in mounts if not parts[0].startswith((".", "/"))}
    assert named == {"datagate-data": runtime.env()["DATAGATE_DATA_DIR"]}
    assert "datagate-data" in compose["volumes"]


def test_datagate_publishes_the_exposed_port_on_host_loopback_by_default(
    services: dict[str, Any], runtime: Stage
) -> None:
    (mapping,) = services["datagate"]["ports"]
    bind, host_port, container_port = compose_defaults(mapping).split(":")
    assert container_port == runtime.args("EXPOSE")[-1] == "8000"
    assert (bind, host_port) == ("127.0.0.1", "8000")


def test_settings_come_from_the_environment_with_defaults(services: dict[str, Any]) -> None:
    environment = services["datagate"]["environment"]
    assert set(environment) >= {"DATAGATE_WORKERS", "DATAGATE_LOG_FORMAT", "DATAGATE_AUTH"}
    for name, value in environment.items():
        assert re.fullmatch(rf"\$\{{{name}:-[^}}]+\}}", value), (name, value)
    # Keys and URLs with credentials are read from an optional file, not written here.
    assert services["datagate"]["env_file"] == [{"path": "./datagate.env", "required": False}]


def test_every_long_running_service_has_a_health_check_and_restarts(
    services: dict[str, Any],
) -> None:
    long_running = {name for name, service in services.items() if not _is_one_shot(service)}
    assert long_running == {"datagate", "postgres", "minio"}
    for name in long_running:
        healthcheck = services[name]["healthcheck"]
        assert healthcheck["test"] and not healthcheck.get("disable"), name
        assert services[name]["restart"] in LONG_RUNNING_RESTART, name


def test_one_shot_services_run_once_and_are_judged_by_their_exit_code(
    services: dict[str, Any],
) -> None:
    one_shots = {name for name, service in services.items() if _is_one_shot(service)}
    assert one_shots == {"minio-init", "pipeline"}
    for name in one_shots:
        # The image's own health check would ask a server a one-shot does not run.
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_datagate_health_check_asks_readyz_with_python_not_curl(
    services: dict[str, Any],
) -> None:
    test = services["datagate"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "urllib.request" in test[3]
    assert "http://127.0.0.1:8000/readyz" in test[3]
    assert not any("curl" in part or "wget" in part for part in test)


def test_stack_profile_adds_postgres_minio_and_the_example_pipeline(
    services: dict[str, Any],
) -> None:
    in_stack = {name for name, svc in services.items() if "stack" in svc.get("profiles", [])}
    assert in_stack == {"postgres", "minio", "minio-init", "pipeline"}


def test_datagate_waits_for_healthy_stores_only_when_the_stack_runs(
    services: dict[str, Any],
) -> None:
    depends_on = services["datagate"]["depends_on"]
    for store in ("postgres", "minio"):
        assert depends_on[store] == {"condition": "service_healthy", "required": False}


def test_pipeline_validates_the_example_once_datagate_is_healthy(
    services: dict[str, Any],
) -> None:
    pipeline = services["pipeline"]
    assert pipeline["command"] == [
        "datagate",
        "validate",
        "/examples/penguins.csv",
        "--suite",
        "penguins",
        "--server",
        "http://datagate:8000",
    ]
    assert "./examples:/examples:ro" in pipeline["volumes"]
    assert pipeline["depends_on"]["datagate"] == {"condition": "service_healthy"}
    assert pipeline["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    assert pipeline["image"] == services["datagate"]["image"]


def test_stack_settings_file_points_datagate_at_the_stack_services(
    services: dict[str, Any],
) -> None:
    lines = (REPO / "docker" / "datagate.stack.env").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    postgres = {k: compose_defaults(v) for k, v in services["postgres"]["environment"].items()}
    minio = {k: compose_defaults(v) for k, v in services["minio"]["environment"].items()}
    assert settings["DATAGATE_DATABASE_URL"] == (
        f"postgresql+psycopg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert settings["DATAGATE_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert settings["DATAGATE_S3_KEY"] == minio["MINIO_ROOT_USER"]
    assert settings["DATAGATE_S3_SECRET"] == minio["MINIO_ROOT_PASSWORD"]
