"""JSON values to and from google.protobuf.Struct, the proto's carrier for JSON objects.

Struct numbers are doubles; JSON (and every schema and definition we carry) does not tell
1 from 1.0, so integral doubles come back as ints: a definition registered over gRPC is
then the same value as one registered over HTTP, and does not count as an update.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def to_json(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The JSON object a Struct holds."""
    value: dict[str, Any] = _integral(json_format.MessageToDict(struct))
    return value


def to_struct(value: dict[str, Any] | None) -> struct_pb2.Struct | None:
    """A Struct holding this JSON object; None stays None (an unset field)."""
    if value is None:
        return None
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct
