"""Which fields of events, commands and blobs are sealed: all of them, but for one allowlist.

Every field of every event, command and blob is personal, and so sealed with the subject's
data key before it is stored or published (crypto/, blobs/), unless `NOT_PERSONAL` names it
with the reason it may stay readable without that key: ids the system makes, routing keys,
versions, times, counts, fixed codes, catalog tool names, tenant configuration, erasure
bookkeeping. A field nobody decided about is therefore sealed; `Personal[...]` records the
decision that a field is personal, and a unit test fails for any field that is on neither
side ("decide whether X.y is personal"). The domain only decides; it never encrypts.

The allowlist is keyed "Class.field" by the class that declares the field, so an entry for
`Command.tenant` covers every command. Views (Redis or memory) are not covered: they hold
opened data by design and erasure purges them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import Annotated, Literal, TypeVar, get_type_hints

from pydantic import BaseModel

T = TypeVar("T")


class PersonalData:
    """Annotation metadata: this field holds the subject's personal data (decided, sealed)."""

    def __repr__(self) -> str:
        return "PersonalData()"


PERSONAL = PersonalData()
Personal = Annotated[T, PERSONAL]

_ID = "an id the system makes (uuid4 or CSPRNG), never one the caller chose"
_TOKEN = "from the verified access token: routing, tenant checks and the key lookup need it"
_SUBJECT = "the token's pseudonymous subject: whose key seals the rest (docs/design-notes.md)"
_SESSION = "a CSPRNG id the gateway made: the session's stream id and bus key"
_TIME = "a time the system takes"
_COUNT = "a number the system counts"
_CODE = "one of the fixed codes the code base defines"
_KIND = "the command's type: the envelope's discriminator"
_ROLES = "roles from the verified token: the worker checks them"
_TOOL = "a tool name checked against the catalog: the audit column, metrics and notifications"
_PLAN = "routing: the plan's stream id and bus key are made of it (NAME_PATTERN, no spaces)"
_COMMAND = "the command's id, made by the system: idempotency and the outcome's waiter match on it"
_REGISTRY = "tenant configuration, not a subject's data: registry views are built without keys"
_ERASURE = "erasure bookkeeping: the PII-free record stays readable after the key is gone"
_PRIVACY = "a privacy choice, written unsealed: it must outlive the subject's erasure"

NOT_PERSONAL: Mapping[str, str] = MappingProxyType(
    {
        # every command (domain/commands.py) and the erasure command
        "Command.command_id": "made by the edge (uuid4) or derived for a plan task's call: idempotency",
        "Command.correlation_id": "made by the system (a command id or pipeline-<uuid>): for auditors",
        "Command.tenant": _TOKEN,
        "Command.subject": _SUBJECT,
        "Command.session_id": _SESSION,
        "Command.issued_at": _TIME,
        "Command.roles": _ROLES,
        "CallTool.kind": _KIND,
        "CallTool.tool_name": _TOOL,
        "CallTool.task_id": "a CSPRNG id the gateway made (streams.new_task_id): the task to watch",
        "CallTool.client_capabilities": _CODE
        + " (which of sampling, elicitation and roots the agent declared)",
        "PlanCommand.plan_id": _PLAN,
        "AcceptPlan.kind": _KIND,
        "AcceptPlan.execute": "a flag: start the plan once accepted",
        "ExecutePlan.kind": _KIND,
        "CancelPlan.kind": _KIND,
        "EraseSubject.kind": _KIND,
        "EraseSubject.requested_by": "an admin's subject or a job's name, on the unsealed compliance topic",
        # session stream (domain/events.py)
        "SessionOpened.session_id": _SESSION,
        "SessionOpened.tenant": _TOKEN,
        "SessionOpened.subject": _SUBJECT,
        "SessionOpened.opened_at": _TIME,
        "SessionClosed.reason": _CODE + " (client)",
        "ToolCalled.command_id": _COMMAND,
        "ToolCalled.tool_name": _TOOL,
        "ToolCalled.issued_at": _TIME,
        "ToolSucceeded.command_id": _COMMAND,
        "ToolSucceeded.tool_name": _TOOL,
        "ToolFailed.command_id": _COMMAND,
        "ToolFailed.tool_name": _TOOL,
        "ToolFailed.error_code": _CODE + ": notifications name it",
        "ToolCallDenied.command_id": _COMMAND,
        "ToolCallDenied.tool_name": _TOOL,
        "ToolCallDenied.roles": _ROLES,
        # plan stream (domain/plans/events.py); task ids, plan text and messages stay sealed
        "PlanAccepted.command_id": _COMMAND,
        "PlanAccepted.plan_id": _PLAN,
        "PlanAccepted.tenant": _TOKEN,
        "PlanAccepted.subject": _SUBJECT,
        "PlanAccepted.session_id": _SESSION,
        "PlanAccepted.roles": _ROLES,
        "PlanAccepted.seed": "a random number the worker drew for the retry jitter",
        "PlanAccepted.accepted_at": _TIME,
        "PlanStarted.command_id": _COMMAND,
        "PlanStarted.plan_id": _PLAN,
        "PlanStarted.started_at": _TIME,
        "PlanStarted.deadline": _TIME,
        "PlanCommandRefused.command_id": _COMMAND,
        "PlanCommandRefused.plan_id": _PLAN,
        "PlanCommandRefused.error_code": _CODE,
        "PlanCancelRequested.command_id": _COMMAND,
        "PlanCancelRequested.plan_id": _PLAN,
        "PlanCancelRequested.requested_at": _TIME,
        "PlanStepGranted.command_id": _COMMAND,
        "PlanStepGranted.plan_id": _PLAN,
        "PlanStepGranted.granted_at": _TIME,
        "PlanPaused.plan_id": _PLAN,
        "TaskStarted.attempt": _COUNT,
        "TaskStarted.tool_name": _TOOL,
        "TaskStarted.started_at": _TIME,
        "TaskStarted.deadline": _TIME,
        "TaskSucceeded.attempt": _COUNT,
        "TaskSucceeded.finished_at": _TIME,
        "TaskFailed.attempt": _COUNT,
        "TaskFailed.error_code": _CODE,
        "TaskFailed.retryable": "a flag the executor sets",
        "TaskFailed.will_retry": "a flag the executor sets",
        "TaskFailed.finished_at": _TIME,
        "TaskRetryScheduled.next_attempt": _COUNT,
        "TaskRetryScheduled.delay": "seconds the executor computed (policy and seeded jitter)",
        "TaskRetryScheduled.not_before": _TIME,
        "TaskCancelled.attempt": _COUNT,
        "CompensationStarted.tool_name": _TOOL,
        "CompensationStarted.started_at": _TIME,
        "CompensationFailed.error_code": _CODE,
        "PlanCompleted.plan_id": _PLAN,
        "PlanCompleted.status": _CODE,
        "PlanCompleted.finished_at": _TIME,
        # MCP task streams (domain/tasks/events.py); results, messages and input requests stay sealed
        "McpTaskCreated.task_id": "a CSPRNG id the gateway made (streams.new_task_id): the stream id",
        "McpTaskCreated.tenant": _TOKEN,
        "McpTaskCreated.subject": _SUBJECT,
        "McpTaskCreated.tool_name": _TOOL,
        "McpTaskCreated.command_id": _COMMAND,
        "McpTaskCreated.session_id": _SESSION,
        "McpTaskCreated.plan_id": _PLAN,
        "McpTaskCreated.ttl_ms": "a retention the gateway chose: the purge reads it without keys",
        "McpTaskCreated.poll_interval_ms": "a constant the gateway sets",
        "McpTaskCreated.created_at": _TIME,
        "McpTaskStatusChanged.status": _CODE,
        "McpTaskStatusChanged.changed_at": _TIME,
        "McpTaskInputRequired.changed_at": _TIME,
        "McpTaskInputRequired.expires_at": _TIME + " (the end of the bounded wait for input)",
        "McpTaskInputAnswered.keys": _ID + " (keys the worker minted for the task's input requests)",
        "McpTaskInputAnswered.changed_at": _TIME,
        "McpTaskCompleted.is_error": "a flag: the tool reported an error",
        "McpTaskCompleted.completed_at": _TIME,
        "McpTaskPurged.purged_at": _TIME,
        "McpTaskFailed.code": _CODE,
        "McpTaskFailed.failed_at": _TIME,
        "McpTaskCancelled.cancelled_at": _TIME,
        # registry streams (domain/registry/events.py); a data source's DSN stays sealed
        "ToolRegistered.definition": _REGISTRY + " (written by a tenant admin; docs/design-notes.md)",
        "ToolRegistered.version": _COUNT,
        "ToolUpdated.definition": _REGISTRY + " (written by a tenant admin; docs/design-notes.md)",
        "ToolUpdated.version": _COUNT,
        "ToolRemoved.name": _REGISTRY,
        "ToolRemoved.version": _COUNT,
        "DataSourceConnected.source": _REGISTRY + ": its tools are named after it",
        "DataSourceConnected.dialect": _CODE + " (the SQL dialect)",
        "ToolSucceeded.is_error": "a flag the tool's result sets (MCP isError)",
        "DataSourceConnected.tables": _REGISTRY + ": table names its tools are made from",
        # upstream servers (domain/upstreams/events.py), in the registry streams
        "UpstreamServerRegistered.server": _REGISTRY + " (no secret: that is the sealed `secret`)",
        "UpstreamCatalogRecorded.server": _REGISTRY,
        "UpstreamCatalogRecorded.protocol_version": _CODE + " (the MCP protocol version spoken)",
        "UpstreamCatalogRecorded.tools": _REGISTRY + ": definitions the upstream publishes",
        "UpstreamCatalogRecorded.resources": _REGISTRY + ": definitions the upstream publishes",
        "UpstreamCatalogRecorded.resource_templates": _REGISTRY + ": definitions the upstream publishes",
        "UpstreamCatalogRecorded.prompts": _REGISTRY + ": definitions the upstream publishes",
        "UpstreamToolChanged.server": _REGISTRY,
        "UpstreamToolChanged.tool": _REGISTRY,
        "UpstreamToolChanged.previous_hash": _REGISTRY + " (a definition's sha256)",
        "UpstreamToolChanged.definition_hash": _REGISTRY + " (a definition's sha256)",
        "UpstreamToolsApproved.server": _REGISTRY,
        "UpstreamToolsApproved.approved": _REGISTRY + " (tool names and definition hashes)",
        "UpstreamToolRejected.server": _REGISTRY,
        "UpstreamToolRejected.tool": _REGISTRY,
        "UpstreamToolRejected.definition_hash": _REGISTRY + " (a definition's sha256)",
        "UpstreamToolRejected.rejected_by": _REGISTRY
        + " (the deciding admin's subject, as in every event's metadata)",
        "UpstreamServerRemoved.server": _REGISTRY,
        "UpstreamProgressed.command_id": "the call's command id: the API's waiter matches on it",
        "UpstreamProgressed.progress": _COUNT + " (by the upstream)",
        "UpstreamProgressed.total": _COUNT + " (by the upstream)",
        "UpstreamLogged.command_id": "the call's command id: the API's waiter matches on it",
        "UpstreamLogged.level": _CODE + " (an MCP logging level)",
        "UpstreamInputRequested.command_id": "the call's command id: the API's waiter matches on it",
        "UpstreamInputRequested.request_id": _ID + " (the back channel's request id)",
        "UpstreamInputRequested.method": _CODE
        + " (sampling/createMessage, elicitation/create or roots/list)",
        "UpstreamInputAnswered.request_id": _ID + " (the back channel's request id)",
        # erasure stream (domain/compliance/erasure.py), written unsealed
        "ErasureStarted.erasure_id": _ERASURE,
        "ErasureStarted.requested_by": _ERASURE + " (an admin's subject or a job's name)",
        "ErasureStarted.started_at": _TIME,
        "SubjectKeysDestroyed.erasure_id": _ERASURE,
        "SubjectKeysDestroyed.keys_destroyed": _COUNT,
        "ErasureCompleted.erasure_id": _ERASURE,
        "ErasureCompleted.requested_by": _ERASURE + " (an admin's subject or a job's name)",
        "ErasureCompleted.keys_destroyed": _COUNT,
        "ErasureCompleted.purged": _COUNT + " per kind of purged data",
        "ErasureCompleted.started_at": _TIME,
        "ErasureCompleted.completed_at": _TIME,
        # privacy stream (domain/compliance/privacy.py), written unsealed
        "SubjectOptedOut.requested_by": _PRIVACY + " (the subject, an admin or a job)",
        "SubjectOptedOut.via": _CODE + " (tool, admin, cli)",
        "SubjectOptedOut.at": _TIME,
        "SubjectOptedIn.requested_by": _PRIVACY + " (the subject, an admin or a job)",
        "SubjectOptedIn.via": _CODE + " (tool, admin, cli)",
        "SubjectOptedIn.at": _TIME,
        "SharingRefused.channel": _PRIVACY + " (export, or tool:<catalog name>)",
        "SharingRefused.requested_by": _PRIVACY,
        "SharingRefused.at": _TIME,
        # blobs (blobs/ports.Blob): name, mime type and contents stay sealed
        "Blob.blob_id": "a digest of the command id: the pointer names it",
        "Blob.tenant": _TOKEN,
        "Blob.subject": _SUBJECT + "; erasure finds the subject's blobs by it",
        "Blob.session_id": _SESSION,
        "Blob.created_at": _TIME,
        "Blob.erased": "the tombstone flag erasure sets",
    }
)
"""Fields that stay readable without the subject's key, each with the reason it may."""


def field_names(model: type) -> tuple[str, ...]:
    """The fields of a pydantic model or a dataclass.

    Raises:
        TypeError: `model` is neither.
    """
    if issubclass(model, BaseModel):
        return tuple(model.model_fields)
    if dataclasses.is_dataclass(model):
        return tuple(field.name for field in dataclasses.fields(model))
    raise TypeError(f"{model.__name__} is neither a pydantic model nor a dataclass")


def _allowlisted(model: type, name: str) -> bool:
    return any(f"{klass.__name__}.{name}" in NOT_PERSONAL for klass in model.__mro__)


@cache
def personal_fields(model: type) -> frozenset[str]:
    """The fields of `model` that are sealed: every one not on NOT_PERSONAL."""
    return frozenset(name for name in field_names(model) if not _allowlisted(model, name))


def marked_personal(model: type) -> frozenset[str]:
    """The fields of `model` annotated Personal[...]: decided to be personal."""
    metadata: dict[str, tuple[object, ...]]
    if issubclass(model, BaseModel):
        metadata = {name: tuple(info.metadata) for name, info in model.model_fields.items()}
    else:
        hints = get_type_hints(model, include_extras=True)
        metadata = {name: tuple(getattr(hints[name], "__metadata__", ())) for name in field_names(model)}
    return frozenset(name for name, found in metadata.items() if _has_mark(found))


def _has_mark(metadata: Iterable[object]) -> bool:
    return any(isinstance(meta, PersonalData) for meta in metadata)


def undecided_fields(model: type) -> frozenset[str]:
    """Fields nobody decided about: neither marked Personal nor on NOT_PERSONAL (sealed anyway)."""
    return personal_fields(model) - marked_personal(model)


def contradictions(model: type) -> frozenset[str]:
    """Fields marked Personal and yet on NOT_PERSONAL (the allowlist wins: they go unsealed)."""
    return marked_personal(model) - personal_fields(model)


DataRecipient = Literal["third_party", "first_party", "processor"]
"""Who receives the personal data a registered tool is sent (the CCPA opt-out rule in
domain/privacy.py): a third party, the operator itself, or a processor under contract."""
