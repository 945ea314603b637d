"""The AsyncAPI 3.0 document of the bus: topics, message headers and payload schemas.

Generated from the code: payload schemas come from the pydantic models (CommandEnvelope,
ComplianceEnvelope, every event type in domain.events.EVENT_TYPES with its schema version),
assembled with FastStream's AsyncAPI 3.0 object model. FastStream's own generator describes
a broker's typed subscribers and publishers; ours are byte handlers behind the MessageBus
port (and broadcast consumers are plain aiokafka), so it would describe empty payloads.

Every field of an event or command not on domain/personal.NOT_PERSONAL travels sealed: its
schema is "a sealed field, or, once opened by a holder of the subject's key, this shape".
Does not describe Kafka settings beyond the topic addresses and message keys.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from faststream.specification.asyncapi.v3_0_0.schema import (
    ApplicationInfo,
    ApplicationSchema,
    Channel,
    Components,
    Message,
    Operation,
    Reference,
    Server,
)
from pydantic import BaseModel

import mcp_ledger.domain  # noqa: F401  (registers the compliance event types)
from mcp_ledger.domain.commands import Command, CommandEnvelope
from mcp_ledger.domain.compliance.erasure import ComplianceEnvelope
from mcp_ledger.domain.events import EVENT_TYPES, DomainEvent
from mcp_ledger.domain.personal import personal_fields
from mcp_ledger.settings import Settings

REF = "#/components/schemas/{model}"
JSON = dict[str, Any]

SEALED_FIELD: JSON = {
    "type": "object",
    "title": "SealedField",
    "description": "A personal field sealed with AES-256-GCM under the subject's data key "
    "(base64 of nonce and ciphertext, and the key id). Unreadable once the subject is erased.",
    "properties": {"$sealed": {"type": "string"}, "kid": {"type": "string"}},
    "required": ["$sealed", "kid"],
    "additionalProperties": False,
}


def _header(description: str) -> JSON:
    return {"type": "string", "description": description}


TRACEPARENT = _header("W3C trace context of the span that published the message")
COMMAND_HEADERS: JSON = {
    "type": "object",
    "properties": {
        "command_id": _header("the command's id (made at the edge)"),
        "correlation_id": _header("groups the commands of one conversation or plan"),
        "traceparent": TRACEPARENT,
    },
    "required": ["command_id"],
}
EVENT_HEADERS: JSON = {
    "type": "object",
    "properties": {
        "event_type": _header("the event type, e.g. ToolSucceeded: route without parsing the body"),
        "schema_version": _header("the event type's schema version, as a decimal string"),
        "command_id": _header("the command that caused the event (empty for none)"),
        "correlation_id": _header("the command's correlation id"),
        "traceparent": TRACEPARENT,
    },
    "required": ["event_type", "schema_version", "command_id", "correlation_id"],
}
EVENT_METADATA: JSON = {
    "type": "object",
    "description": "Who caused the event and why; extra keys may appear (readers ignore them).",
    "properties": {
        "command_id": {"type": "string"},
        "correlation_id": {"type": "string"},
        "tenant": {"type": "string"},
        "subject": {"type": "string"},
        "traceparent": {"type": "string"},
    },
    "additionalProperties": True,
}


def _seal_personal(schema: JSON, model: type[BaseModel]) -> None:
    if not issubclass(model, (Command, DomainEvent)):
        return  # events and commands are sealed field by field; what they nest travels inside
    properties = schema.get("properties", {})
    for name in personal_fields(model):
        if name in properties:
            plain = properties[name]
            properties[name] = {
                "anyOf": [{"$ref": REF.format(model="SealedField")}, plain],
                "description": "personal data: sealed on the bus and in the store",
            }


def _models_in(models: Iterable[type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """Every model reachable from `models` through their fields, by name."""
    found: dict[str, type[BaseModel]] = {}
    pending = list(models)
    while pending:
        model = pending.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for info in model.model_fields.values():
            for arg in _type_args(info.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    pending.append(arg)
    return found


def _type_args(annotation: Any) -> list[Any]:
    args = [annotation]
    for inner in getattr(annotation, "__args__", ()) or ():
        args += _type_args(inner)
    return args


def _collect(model: type[BaseModel], schemas: dict[str, JSON]) -> JSON:
    """The model's schema with its $defs moved into `schemas` and personal fields sealed."""
    schema = copy.deepcopy(model.model_json_schema(ref_template=REF))
    nested = _models_in([model])
    for name, definition in schema.pop("$defs", {}).items():
        if name in nested:
            _seal_personal(definition, nested[name])
        schemas.setdefault(name, definition)
    _seal_personal(schema, model)
    return schema


def _event_variant(event_type: str, cls: type[DomainEvent], schemas: dict[str, JSON]) -> JSON:
    schemas[event_type] = _collect(cls, schemas)
    return {
        "type": "object",
        "title": f"{event_type} v{cls.schema_version}",
        "properties": {
            "position": {"type": "integer", "minimum": 1, "description": "global order in the store"},
            "stream_id": {"type": "string"},
            "version": {"type": "integer", "minimum": 1, "description": "order within the stream"},
            "event_type": {"const": event_type},
            "schema_version": {"const": cls.schema_version},
            "data": {"$ref": REF.format(model=event_type)},
            "metadata": {"$ref": REF.format(model="EventMetadata")},
            "recorded_at": {"type": "string", "format": "date-time"},
        },
        "required": [
            "position",
            "stream_id",
            "version",
            "event_type",
            "schema_version",
            "data",
            "metadata",
            "recorded_at",
        ],
    }


def _schemas() -> tuple[dict[str, JSON], dict[str, Message]]:
    schemas: dict[str, JSON] = {"SealedField": SEALED_FIELD, "EventMetadata": EVENT_METADATA}
    command = _collect(CommandEnvelope, schemas)
    variants = [_event_variant(name, cls, schemas) for name, cls in sorted(EVENT_TYPES.items())]
    event = {
        "title": "StoredEvent",
        "description": "A recorded event as published after its transaction committed (at least once: "
        "dedupe by position). Older schema versions are upcast by readers (docs/events.md).",
        "oneOf": variants,
        "discriminator": "event_type",
    }
    messages = {
        "CommandEnvelope": Message(
            name="CommandEnvelope",
            title="A command for the workers",
            contentType="application/json",
            payload=command,
            headers=COMMAND_HEADERS,
        ),
        "StoredEvent": Message(
            name="StoredEvent",
            title="A recorded event",
            contentType="application/json",
            payload=event,
            headers=EVENT_HEADERS,
        ),
        "ComplianceEnvelope": Message(
            name="ComplianceEnvelope",
            title="An erasure request",
            contentType="application/json",
            payload=_collect(ComplianceEnvelope, schemas),
            headers=COMMAND_HEADERS,
        ),
        "PlanRun": Message(
            name="PlanRun",
            title="A plan to execute: held while it runs, it is the plan's lease",
            contentType="application/json",
            payload={
                "type": "object",
                "properties": {"stream_id": {"type": "string"}},
                "required": ["stream_id"],
            },
            headers={"type": "object", "properties": {"traceparent": TRACEPARENT}},
        ),
    }
    return schemas, messages


CHANNELS = (
    # (channel id, settings topic property, message, who sends, who receives)
    ("commands", "commands_topic", "CommandEnvelope", "the API", "workers (group ledger-workers)"),
    (
        "events",
        "events_topic",
        "StoredEvent",
        "workers (outbox relay)",
        "projections, API replicas, downstream",
    ),
    ("compliance", "compliance_topic", "ComplianceEnvelope", "admins and compliance jobs", "workers"),
    ("planRuns", "plan_runs_topic", "PlanRun", "workers", "workers (plan executor)"),
)


def _package_version() -> str:
    try:
        return version("mcp-ledger")
    except PackageNotFoundError:
        return "0.0.0"


def _server(settings: Settings) -> Server:
    hosts = urlsplit(settings.bus).netloc if settings.bus.startswith("kafka://") else ""
    return Server(
        host=hosts.split(",")[0] or "kafka:9092",
        pathname="",
        protocol="kafka",
        description="The deployment's Kafka cluster (LEDGER_BUS)",
    )


def build_asyncapi(settings: Settings) -> ApplicationSchema:
    """The AsyncAPI 3.0 document for these settings' topic names."""
    schemas, messages = _schemas()
    channels: dict[str, Channel] = {}
    operations: dict[str, Operation] = {}
    for channel_id, topic_property, message, sender, receiver in CHANNELS:
        ref = Reference(**{"$ref": f"#/components/messages/{message}"})
        channels[channel_id] = Channel(
            address=str(getattr(settings, topic_property)),
            description=f"Sent by {sender}; received by {receiver}. Keyed; per-key order.",
            messages={message: ref},
        )
        channel_ref = Reference(**{"$ref": f"#/channels/{channel_id}"})
        message_ref = Reference(**{"$ref": f"#/channels/{channel_id}/messages/{message}"})
        operations[f"send_{channel_id}"] = Operation(
            action="send", channel=channel_ref, messages=[message_ref]
        )
        operations[f"receive_{channel_id}"] = Operation(
            action="receive", channel=channel_ref, messages=[message_ref]
        )
    return ApplicationSchema(
        info=ApplicationInfo(
            title="mcp-ledger",
            version=_package_version(),
            description="Commands and recorded events of the mcp-ledger gateway, for downstream subscribers.",
        ),
        asyncapi="3.0.0",
        defaultContentType="application/json",
        servers={"kafka": _server(settings)},
        channels=channels,
        operations=operations,
        components=Components(messages=messages, schemas=schemas),
    )


def asyncapi_document(settings: Settings) -> JSON:
    """The document as JSON-ready data."""
    document = build_asyncapi(settings).to_jsonable()
    assert isinstance(document, dict)
    return document
