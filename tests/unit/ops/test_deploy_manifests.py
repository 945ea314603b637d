"""deploy/: every manifest is valid against the Kubernetes OpenAPI schemas (offline, bundled by
kubernetes-validate), the kustomization lists them, and they name real settings and routes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from mcp_ledger.producers.kafka import KafkaBus
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import running
from tests.support.embedded import embedded_settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
# The oldest Kubernetes the manifests support (the preStop sleep action) and the newest bundled.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
SETTINGS_VARIABLES = {f"LEDGER_{name.upper()}" for name in Settings.model_fields}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> list[Path]:
    return sorted(
        p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml" and "examples" not in p.parts
    )


def _kind(kind: str) -> list[dict[str, Any]]:
    return [doc for path in _manifests() for doc in _documents(path) if doc["kind"] == kind]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", _manifests(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_each_manifest_is_valid_for_kubernetes(path: Path, version: str) -> None:
    for document in _documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_an_invalid_manifest_is_refused() -> None:
    (deployment,) = _documents(DEPLOY / "api-deployment.yaml")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = {DEPLOY / name for name in kustomization["resources"]}
    assert all(path.exists() for path in listed)
    assert set(_manifests()) - listed == {DEPLOY / "secret.example.yaml"}


def test_configuration_names_only_variables_the_settings_read() -> None:
    (config,) = _kind("ConfigMap")
    (secret,) = _kind("Secret")
    env = [
        item["name"]
        for deployment in _kind("Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for item in container.get("env", [])
    ]
    assert set(config["data"]) | set(secret["stringData"]) | set(env) <= SETTINGS_VARIABLES
    assert {"LEDGER_SECRET_KEY", "LEDGER_KEK", "LEDGER_STORE"} <= set(secret["stringData"])


def test_pods_take_their_configuration_from_the_configmap_and_the_secret() -> None:
    (config,) = _kind("ConfigMap")
    (secret,) = _kind("Secret")
    for workload in [*_kind("Deployment"), *_kind("Job")]:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert container["envFrom"] == [
                {"configMapRef": {"name": config["metadata"]["name"]}},
                {"secretRef": {"name": secret["metadata"]["name"]}},
            ]


def test_the_grace_period_outlasts_the_drain() -> None:
    (config,) = _kind("ConfigMap")
    bus_drain = inspect.signature(KafkaBus.stop).parameters["drain_timeout"].default
    drain = float(config["data"]["LEDGER_DRAIN_TIMEOUT"]) + bus_drain
    for deployment in _kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        pre_stop = (
            spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        )
        assert spec["terminationGracePeriodSeconds"] > drain + pre_stop


async def test_the_api_probes_name_routes_the_api_serves(tmp_path: Path) -> None:
    (api,) = [d for d in _kind("Deployment") if d["metadata"]["name"] == "mcp-ledger-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    probed = {container[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")}
    async with running(embedded_settings(tmp_path), api=True, worker=True) as runtime:
        assert runtime.app is not None
        served = {getattr(route, "path", "") for route in runtime.app.routes}
    assert probed == {"/readyz", "/healthz"}
    assert probed <= served
    assert "/metrics" not in served  # operator data: on the metrics port only


def test_every_pod_exposing_metrics_does_so_on_its_metrics_port_behind_the_secret_token() -> None:
    (secret,) = _kind("Secret")
    for deployment in _kind("Deployment"):
        template = deployment["spec"]["template"]
        (container,) = template["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert template["metadata"]["annotations"]["prometheus.io/port"] == env["LEDGER_METRICS_PORT"]
        assert str(ports["metrics"]) == env["LEDGER_METRICS_PORT"]
        assert env["LEDGER_METRICS_HOST"] == "0.0.0.0"
        assert "LEDGER_METRICS_TOKEN" in secret["stringData"]
        probes = [container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe") if k in container]
        assert all(probe["path"] != "/metrics" for probe in probes)  # a probe sends no token
