"""The Kubernetes example: datagate as a probed, non-root, read-only sidecar of a training Pod."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.readers import K8S_FILE, Stage


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(K8S_FILE.read_text()) if doc]


@pytest.fixture(scope="module")
def pod(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [doc for doc in documents if doc["kind"] == "Pod"]
    return found


@pytest.fixture(scope="module")
def sidecar(pod: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in pod["spec"]["initContainers"] if c["name"] == "datagate"
    ]
    assert len(found) == 1
    return found[0]


def test_datagate_is_a_native_sidecar_next_to_the_training_container(
    pod: dict[str, Any], sidecar: dict[str, Any]
) -> None:
    # An init container that keeps running: it starts before training and stops after it.
    assert sidecar["restartPolicy"] == "Always"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["train"]
    (train,) = pod["spec"]["containers"]
    assert {"name": "DATAGATE_URL", "value": "http://127.0.0.1:8000"} in train["env"]


def test_probes_ask_readyz_and_healthz_on_the_container_port(
    sidecar: dict[str, Any], runtime: Stage
) -> None:
    (port,) = sidecar["ports"]
    assert port["containerPort"] == int(runtime.args("EXPOSE")[-1]) == 8000
    names = {port["name"], port["containerPort"]}
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Training starts only once datagate is ready.
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert sidecar[probe]["httpGet"]["port"] in names, probe


def test_runs_non_root_with_the_image_uid_and_a_read_only_root(
    pod: dict[str, Any], sidecar: dict[str, Any], runtime: Stage
) -> None:
    uid, _, gid = runtime.args("USER")[-1].partition(":")
    pod_security = pod["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (int(uid), int(gid))
    for container in [sidecar, *pod["spec"]["containers"]]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]


def test_data_is_an_empty_dir_and_expectations_a_read_only_config_map(
    pod: dict[str, Any], sidecar: dict[str, Any], runtime: Stage
) -> None:
    env = runtime.env()
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in sidecar["volumeMounts"]}
    data = mounts[env["DATAGATE_DATA_DIR"]]
    assert "emptyDir" in volumes[data["name"]]
    expectations = mounts[env["DATAGATE_EXPECTATIONS_DIR"]]
    assert expectations["readOnly"] is True
    assert volumes[expectations["name"]]["configMap"]["name"] == "datagate-expectations"
    # Python's temporary files and bytecode cache need somewhere writable.
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_other_pods_cannot_reach_the_unauthenticated_sidecar(
    documents: list[dict[str, Any]], pod: dict[str, Any], sidecar: dict[str, Any]
) -> None:
    assert {"name": "DATAGATE_AUTH", "value": "disabled"} in sidecar["env"]
    (policy,) = [doc for doc in documents if doc["kind"] == "NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == []
