"""Malicious and malformed registrations are refused, with a reason, before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_ledger.checks.registrations import check_registration, parse_definitions
from mcp_ledger.domain.registry.registration import RegistrationError, RegistrationPolicy, endpoint_problem

POLICY = RegistrationPolicy(
    allowed_hosts=("api.example.com", "127.0.0.1:8080", "*.internal.example"),
    reserved_names=frozenset({"echo"}),
)


def tool(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        "binding": {
            "kind": "http",
            "method": "GET",
            "base_url": "https://api.example.com",
            "path": "/weather",
        },
    }
    return {**base, **changes}


def refusal(*raw: dict[str, Any]) -> str:
    with pytest.raises(RegistrationError) as caught:
        check_registration(parse_definitions(list(raw)), POLICY)
    return str(caught.value)


def test_a_well_formed_definition_on_an_allowlisted_host_is_accepted() -> None:
    check_registration(parse_definitions([tool()]), POLICY)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://api.example.com/", "scheme 'gopher'"),
        ("http://169.254.169.254/latest/meta-data/", "link-local or metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "link-local or metadata"),
        ("http://[fe80::1]/", "link-local or metadata"),
        ("http://user:secret@api.example.com/", "credentials"),
        ("http://evil.example.net/", "not on the gateway's allowlist"),
        ("http://api.example.com.evil.net/", "not on the gateway's allowlist"),
        ("http://127.0.0.1:9999/", "not on the gateway's allowlist"),
        ("http:///nohost", "has no host"),
    ],
)
def test_endpoints_off_the_allowlist_or_dangerous_are_refused(url: str, reason: str) -> None:
    assert reason in (endpoint_problem(url, POLICY.allowed_hosts) or "")


def test_allowlist_entries_match_ports_and_subdomains() -> None:
    assert endpoint_problem("http://127.0.0.1:8080/x", POLICY.allowed_hosts) is None
    assert endpoint_problem("https://billing.internal.example/x", POLICY.allowed_hosts) is None


def test_a_metadata_address_passes_only_when_named_exactly() -> None:
    assert endpoint_problem("http://169.254.169.254/", ("*",)) is not None
    assert endpoint_problem("http://169.254.169.254/", ("169.254.169.254",)) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "import os; os.system('id')"},
        {"binding": {"kind": "python", "module": "os", "function": "system"}},
        {
            "binding": {
                "kind": "http",
                "method": "GET",
                "base_url": "https://api.example.com",
                "exec": "rm -rf /",
            }
        },
        {"binding": {"kind": "http", "method": "TRACE", "base_url": "https://api.example.com"}},
    ],
)
def test_code_like_payloads_are_refused_as_unknown_fields_or_kinds(payload: dict[str, Any]) -> None:
    with pytest.raises(RegistrationError):
        parse_definitions([tool(**payload)])


def test_an_invalid_json_schema_is_refused() -> None:
    assert "invalid JSON Schema" in refusal(
        tool(input_schema={"type": "object", "properties": {"a": {"type": 7}}})
    )


def test_a_remote_schema_reference_is_refused() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "http://169.254.169.254/schema.json"}}}
    assert "not local" in refusal(tool(input_schema=schema))


def test_an_input_schema_that_is_not_an_object_is_refused() -> None:
    assert "type: object" in refusal(tool(input_schema={"type": "string"}))


def test_an_oversized_definition_is_refused() -> None:
    huge = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "description": "x" * 100} for i in range(700)},
    }
    assert "limit is" in refusal(tool(input_schema=huge))


def test_a_name_colliding_with_a_builtin_is_refused() -> None:
    assert "taken by a built-in" in refusal(tool(name="echo"))


def test_bad_names_are_refused() -> None:
    for name in ("", "has space", "a/b", "x" * 65, "../etc"):
        with pytest.raises(RegistrationError):
            parse_definitions([tool(name=name)])


def test_a_name_twice_in_one_batch_is_refused() -> None:
    assert "named twice" in refusal(tool(), tool())


def test_sql_write_tools_without_the_operator_role_are_refused() -> None:
    binding = {
        "kind": "sql",
        "source": "shop",
        "table": "t",
        "operation": "delete",
        "columns": ["id"],
        "key_columns": ["id"],
    }
    assert "operator" in refusal(tool(binding=binding, minimum_role="viewer"))
    assert "operator" in refusal(tool(binding=binding))


def test_sql_identifiers_must_be_plain_names() -> None:
    binding = {
        "kind": "sql",
        "source": "shop",
        "table": "t; DROP TABLE x",
        "operation": "read",
        "columns": ["id"],
    }
    with pytest.raises(RegistrationError):
        parse_definitions([tool(binding=binding)])


def test_an_unknown_minimum_role_is_refused() -> None:
    assert "minimum_role" in refusal(tool(minimum_role="root"))
