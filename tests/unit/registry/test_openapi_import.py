"""OpenAPI 3.x operations become tool definitions: names, schemas, bindings, x-mcp-tool."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_ledger.consumers.registry.tools import parse_document
from mcp_ledger.domain.registry.bindings import HttpBinding
from mcp_ledger.domain.registry.openapi import OpenApiError, tools_from_openapi
from tests.support.pet_service import openapi_document


def by_name(document: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {d.name: d for d in tools_from_openapi(document, **options)}


def test_each_operation_becomes_a_tool_with_a_sanitised_unique_name() -> None:
    tools = by_name(openapi_document("http://127.0.0.1:1"))
    assert set(tools) == {"getPet", "listPets", "create_pet", "flakyGet", "flakyPost"}


def test_parameters_and_body_make_the_input_schema_and_the_binding() -> None:
    tools = by_name(openapi_document("http://127.0.0.1:1"))
    get_pet, create = tools["getPet"], tools["create_pet"]
    assert get_pet.input_schema["required"] == ["petId"]
    assert get_pet.binding == HttpBinding(
        method="GET", base_url="http://127.0.0.1:1", path="/pets/{petId}", parameters={"petId": "path"}
    )
    assert create.input_schema["required"] == ["body"]
    assert create.input_schema["properties"]["body"]["properties"]["name"] == {"type": "string"}
    assert isinstance(create.binding, HttpBinding)
    assert create.binding.body_argument == "body"


def test_local_references_are_inlined_and_array_outputs_are_wrapped() -> None:
    tools = by_name(openapi_document("http://127.0.0.1:1"))
    assert tools["getPet"].output_schema == {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    }
    listed = tools["listPets"].output_schema
    assert listed is not None
    assert listed["properties"]["result"]["type"] == "array"


def test_x_mcp_tool_gives_category_pipeability_and_minimum_role() -> None:
    tools = by_name(openapi_document("http://127.0.0.1:1"))
    assert tools["getPet"].category == "pets"
    assert tools["getPet"].pipeability.produces == ("pet",)
    assert tools["getPet"].spec().annotations["pipeability"] == {
        "accepts": [],
        "produces": ["pet"],
        "pointer_arguments": [],
    }
    assert tools["create_pet"].minimum_role == "operator"
    assert not tools["create_pet"].read_only


def test_a_recursive_schema_does_not_loop() -> None:
    document = openapi_document("http://127.0.0.1:1")
    document["components"]["schemas"]["Pet"]["properties"]["parent"] = {"$ref": "#/components/schemas/Pet"}
    parent = by_name(document)["getPet"].output_schema["properties"]["parent"]
    assert parent == {}


def test_remote_references_and_other_versions_are_refused() -> None:
    remote = openapi_document("http://127.0.0.1:1")
    remote["paths"]["/pets"]["get"]["responses"]["200"] = {"$ref": "http://169.254.169.254/x.json"}
    with pytest.raises(OpenApiError, match="not local"):
        tools_from_openapi(remote)
    with pytest.raises(OpenApiError, match=r"3\.x"):
        tools_from_openapi({"swagger": "2.0", "paths": {}})


def test_a_base_url_is_needed_when_servers_are_relative() -> None:
    document = openapi_document("/api")
    with pytest.raises(OpenApiError, match="absolute"):
        tools_from_openapi(document)
    assert (
        by_name(document, base_url="https://pets.example")["getPet"].binding.base_url
        == "https://pets.example"
    )


def test_yaml_documents_are_parsed_without_constructing_objects() -> None:
    assert parse_document("openapi: '3.0.3'\npaths: {}\n") == {"openapi": "3.0.3", "paths": {}}
    with pytest.raises(OpenApiError):
        parse_document("!!python/object/apply:os.system ['id']")
