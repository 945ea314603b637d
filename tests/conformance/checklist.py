"""Which scored checks of the conformance suite mcp-ledger must pass on its own, by name.

Every scored server scenario of a requirement set is in exactly one of two places here:
`PROTOCOL` (the scenario exercises the protocol itself: lifecycle, ping, transport, the
stateless wire, capabilities, caching hints, errors, logging level, subscribe) or `FIXTURE`
(the scenario calls a tool, prompt or resource by a name only the SDK's everything server has,
e.g. `test_simple_text`, `test_prompt_with_arguments`, `test://static-text`; those are for the
gateway fronting that server). Read from the scenarios' sources in the installed suite.

`PROTOCOL_CHECKS` lists each check (`scenario/check-id`) a native gateway must pass. Left out,
and why (docs/conformance.md has the table):
- server-stateless's four diagnostic checks probe tools by name (`test_missing_capability`,
  `test_streaming_elicitation`, `test_logging_tool`): "Not testable" without them;
- completion-complete asks for a completion of the fixture prompt `test_prompt_with_arguments`
  (an unknown prompt is -32602, as the spec says it should be);
- server-sse-streams-functional is INFO for a server answering with JSON (SSE is optional);
- the prompts and tools list-changed-on-subscription checks mutate the lists through the
  fixture tools `test_trigger_prompt_change` and `test_trigger_tool_change` (WARNING without).
"""

from __future__ import annotations

_WIRE = "wire-schema-valid"

_COMMON = (
    "dns-rebinding-protection/localhost-host-rebinding-rejected",
    "dns-rebinding-protection/localhost-host-valid-accepted",
    "prompts-list/prompts-list",
    f"prompts-list/{_WIRE}",
    "resources-list/resources-list",
    f"resources-list/{_WIRE}",
    "server-sse-multiple-streams/server-accepts-multiple-post-streams",
    "tools-list/tools-list",
    "tools-list/tools-name-format",
    f"tools-list/{_WIRE}",
    f"completion-complete/{_WIRE}",
)

PROTOCOL_CHECKS: dict[str, tuple[str, ...]] = {
    "2025-11-25": (
        *_COMMON,
        "logging-set-level/logging-set-level",
        f"logging-set-level/{_WIRE}",
        "ping/ping",
        f"ping/{_WIRE}",
        "resources-subscribe/resources-subscribe",
        f"resources-subscribe/{_WIRE}",
        "resources-unsubscribe/resources-unsubscribe",
        f"resources-unsubscribe/{_WIRE}",
        "server-initialize/server-initialize",
        "server-initialize/server-session-id-visible-ascii",
        f"server-initialize/{_WIRE}",
    ),
    "2026-07-28": (
        *_COMMON,
        *(
            f"caching/sep-2549-{name}"
            for name in (
                "tools-list-caching-hints",
                "prompts-list-caching-hints",
                "resources-list-caching-hints",
                "resources-templates-list-caching-hints",
                "resources-read-caching-hints",
                "ttl-non-negative",
                "cache-scope-valid",
            )
        ),
        f"caching/{_WIRE}",
        "sep-2164-resource-not-found/sep-2164-no-empty-contents",
        "sep-2164-resource-not-found/sep-2164-error-code",
        "sep-2164-resource-not-found/sep-2164-data-uri",
        f"sep-2164-resource-not-found/{_WIRE}",
        "tools-list/tools-list-deterministic-order",
        *(
            f"server-stateless/sep-2575-{name}"
            for name in (
                "request-meta-invalid-missing-meta",
                "http-server-meta-invalid-400",
                "request-meta-invalid-missing-protocol-version",
                "request-meta-invalid-missing-client-capabilities",
                "request-meta-client-info-optional",
                "server-implements-discover",
                "server-identifies-in-result-meta",
                "server-declares-prompts-in-discover",
                "discover-capabilities-match-handlers",
                "server-unsupported-version-error",
                "http-server-unsupported-version-400",
                "http-server-header-mismatch-400",
                "http-server-method-not-found-404-initialize",
                "http-server-method-not-found-404-ping",
                "http-server-method-not-found-404-logging-setlevel",
                "http-server-method-not-found-404-resources-subscribe",
                "http-server-method-not-found-404-resources-unsubscribe",
                "http-server-method-not-found-404",
                "http-server-error-jsonrpc-id",
                "server-sends-subscription-ack",
                "server-tags-subscription-id",
                "server-honors-notification-filter",
            )
        ),
    ),
}

PROTOCOL: dict[str, frozenset[str]] = {
    revision: frozenset(key.partition("/")[0] for key in keys) | {"completion-complete"}
    for revision, keys in PROTOCOL_CHECKS.items()
}
"""The protocol-level scenarios (completion-complete is one, but its main check names a fixture)."""

_TOOLS = ("simple-text", "image", "audio", "embedded-resource", "mixed-content", "error", "with-progress")
_PROMPTS = ("simple", "with-args", "embedded-resource", "with-image")
_RESOURCES = ("read-text", "read-binary", "templates-read")
_INPUT_REQUIRED = (
    "basic-elicitation",
    "basic-sampling",
    "basic-list-roots",
    "request-state",
    "multiple-input-requests",
    "multi-round",
    "missing-input-response",
    "non-tool-request",
    "result-type",
    "unsupported-methods",
    "tampered-state",
    "capability-check",
    "ignore-extra-params",
    "validate-input",
)
_FIXTURE_COMMON = (
    *(f"tools-call-{name}" for name in _TOOLS),
    *(f"prompts-get-{name}" for name in _PROMPTS),
    *(f"resources-{name}" for name in _RESOURCES),
)

FIXTURE: dict[str, frozenset[str]] = {
    "2025-11-25": frozenset(
        (
            *_FIXTURE_COMMON,
            "tools-call-with-logging",
            "tools-call-sampling",
            "tools-call-elicitation",
            "elicitation-sep1034-defaults",
            "elicitation-sep1330-enums",
        )
    ),
    "2026-07-28": frozenset(
        (*_FIXTURE_COMMON, *(f"input-required-result-{name}" for name in _INPUT_REQUIRED))
    ),
}
"""Scored scenarios that call fixtures by name: for mcp-ledger fronting the everything server."""
