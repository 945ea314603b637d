"""CCPA "do not sell or share": a subject's opt-out, its events, the rule where it applies, and
the tools that set it.

A subject's choices are a stream of their own (tenant:{tenant}:privacy:{subject}) of
SubjectOptedOut / SubjectOptedIn events; the latest one wins, and no event means "not opted
out". The subject sets it with `privacy_opt_out`; an admin of the tenant with
`privacy_set_opt_out` (also behind POST /admin/opt-outs and `mcp-ledger privacy`). None of
these events holds personal data beyond the subject's id, so they stay readable for auditors
after an erasure.

The rule (`may_share`): an opted-out subject's personal data never goes to a third party.
A registered tool declares its recipient: `third_party` (the default for HTTP tools: any
service the operator does not run or contract), `first_party` (run by the operator) or
`processor` (a service provider processing on the operator's behalf under contract, which is
not a "sale or share" under CCPA §1798.140). An export made for sharing is a third party too.
The subject's own access export is not sharing. Registering the event types here keeps
events.py free of privacy concerns; the package's __init__ imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcp_ledger.domain.events import EVENT_TYPES, DomainEvent
from mcp_ledger.domain.personal import DataRecipient
from mcp_ledger.domain.tools import JSONSchema, ToolSpec

OPT_OUT_TOOL = "privacy_opt_out"
ADMIN_OPT_OUT_TOOL = "privacy_set_opt_out"


def privacy_stream(tenant: str, subject: str) -> str:
    """The stream of a subject's privacy choices."""
    return f"tenant:{tenant}:privacy:{subject}"


class SubjectOptedOut(DomainEvent):
    """The subject asked not to have their personal data sold or shared."""

    requested_by: str
    """The subject themself, or the admin or job that recorded it for them."""
    via: str
    """tool, admin or cli."""
    at: float


class SubjectOptedIn(DomainEvent):
    """The subject withdrew an opt-out."""

    requested_by: str
    via: str
    at: float


class SharingRefused(DomainEvent):
    """Personal data of an opted-out subject was about to leave for a third party and did not."""

    channel: str
    """What was refused: "export" or "tool:{name}"."""
    requested_by: str
    at: float


PRIVACY_EVENTS: tuple[type[DomainEvent], ...] = (SubjectOptedOut, SubjectOptedIn, SharingRefused)
EVENT_TYPES.update({cls.__name__: cls for cls in PRIVACY_EVENTS})


def opted_out(history: Iterable[DomainEvent]) -> bool:
    """Whether the latest choice in a subject's privacy stream is an opt-out."""
    state = False
    for event in history:
        if isinstance(event, SubjectOptedOut):
            state = True
        elif isinstance(event, SubjectOptedIn):
            state = False
    return state


def may_share(is_opted_out: bool, recipient: DataRecipient) -> bool:
    """Whether a subject's personal data may go to this kind of recipient."""
    return not is_opted_out or recipient != "third_party"


def _object(properties: dict[str, JSONSchema], required: list[str]) -> JSONSchema:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_CHOICE: JSONSchema = {"type": "boolean", "default": True, "description": "true: opt out; false: opt back in"}
_RESULT = _object({"subject": {"type": "string"}, "opted_out": {"type": "boolean"}}, ["subject", "opted_out"])


def privacy_tool_specs() -> dict[str, ToolSpec]:
    """The opt-out tools: the subject's own, and the tenant admin's on a subject's behalf."""
    specs = (
        ToolSpec(
            name=OPT_OUT_TOOL,
            title="Do not sell or share my personal information",
            description=(
                "Opt out of (or, with opt_out false, back into) the sale or sharing of your personal "
                "information: tools run by third parties then refuse your calls."
            ),
            input_schema=_object({"opt_out": _CHOICE}, []),
            output_schema=_RESULT,
            read_only=False,
        ),
        ToolSpec(
            name=ADMIN_OPT_OUT_TOOL,
            title="Record a subject's opt-out",
            description="Record a subject's CCPA opt-out (or opt-in) of sale and sharing, on their behalf.",
            input_schema=_object(
                {"subject": {"type": "string", "minLength": 1, "maxLength": 256}, "opt_out": _CHOICE},
                ["subject"],
            ),
            output_schema=_RESULT,
            read_only=False,
            minimum_role="admin",
        ),
    )
    return {spec.name: spec for spec in specs}
