"""The AsyncAPI 3.0 document: complete, self-consistent, and written by `mcp-ledger asyncapi`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from typer.testing import CliRunner

from mcp_ledger.cli.app import app
from mcp_ledger.domain.events import EVENT_TYPES
from mcp_ledger.domain.personal import personal_fields
from mcp_ledger.observability.asyncapi import asyncapi_document
from mcp_ledger.settings import Settings


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_document_is_asyncapi_3_and_every_reference_in_it_resolves() -> None:
    document = asyncapi_document(Settings())
    parsed = ApplicationSchema.model_validate(document)
    assert parsed.asyncapi == "3.0.0"
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert _resolve(document, ref) is not None


def test_the_four_topics_are_channels_at_their_prefixed_addresses_with_send_and_receive() -> None:
    document = asyncapi_document(Settings(topic_prefix="staging."))
    addresses = {name: channel["address"] for name, channel in document["channels"].items()}
    assert addresses == {
        "commands": "staging.ledger.commands",
        "events": "staging.ledger.events",
        "compliance": "staging.ledger.compliance",
        "planRuns": "staging.ledger.plan-runs",
    }
    assert set(document["operations"]) == {f"{a}_{c}" for a in ("send", "receive") for c in addresses}


def test_every_event_type_is_a_variant_with_its_version_and_its_personal_fields_sealed() -> None:
    document = asyncapi_document(Settings())
    schemas = document["components"]["schemas"]
    variants = document["components"]["messages"]["StoredEvent"]["payload"]["oneOf"]
    by_type = {v["properties"]["event_type"]["const"]: v for v in variants}
    assert set(by_type) == set(EVENT_TYPES)
    for name, cls in EVENT_TYPES.items():
        assert by_type[name]["properties"]["schema_version"]["const"] == cls.schema_version
        for field in personal_fields(cls):
            assert {"$ref": "#/components/schemas/SealedField"} in schemas[name]["properties"][field]["anyOf"]


def test_event_headers_name_the_type_version_command_correlation_and_trace() -> None:
    headers = asyncapi_document(Settings())["components"]["messages"]["StoredEvent"]["headers"]
    assert set(headers["properties"]) == {
        "event_type",
        "schema_version",
        "command_id",
        "correlation_id",
        "traceparent",
    }


def test_the_command_writes_json_to_stdout_and_yaml_to_a_file(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["asyncapi"], env={"LEDGER_TOPIC_PREFIX": ""})
    out = tmp_path / "asyncapi.yaml"
    written = runner.invoke(
        app, ["asyncapi", "--format", "yaml", "--out", str(out)], env={"LEDGER_TOPIC_PREFIX": ""}
    )
    assert printed.exit_code == 0, printed.output
    assert written.exit_code == 0, written.output
    expected = asyncapi_document(Settings(topic_prefix=""))
    assert json.loads(printed.stdout) == expected
    assert yaml.safe_load(out.read_text()) == expected
