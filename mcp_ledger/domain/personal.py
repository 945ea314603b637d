"""The marker for event fields that hold personal data.

Fields annotated `Personal[...]` are encrypted with the subject's data key before an event
is stored or published (crypto/) and become unreadable when the subject is erased. The
domain only marks them; it never encrypts.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class PersonalData:
    """Annotation metadata: this field holds the subject's personal data."""

    def __repr__(self) -> str:
        return "PersonalData()"


PERSONAL = PersonalData()
Personal = Annotated[T, PERSONAL]


def personal_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the fields of `model` marked personal."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if any(isinstance(meta, PersonalData) for meta in info.metadata)
    )


DataRecipient = Literal["third_party", "first_party", "processor"]
"""Who receives the personal data a registered tool is sent (the CCPA opt-out rule in
domain/privacy.py): a third party, the operator itself, or a processor under contract."""
