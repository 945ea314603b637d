"""Reading JSON that callers send, with its size and nesting bounded before and while parsing.

Owns the one nesting limit for caller data (request bodies, tool arguments, schemas, plans,
documents a tool fetches), the iterative check of it (no recursion over caller data), and
`load_json`, which applies the size limit to the raw text before any work and turns every
way a text can fail (not JSON, too deep for the parser, NaN or Infinity, too deep for us)
into a DocumentError that says what is wrong. YAML is in yaml_documents.py.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_NESTING = 64
"""How many arrays and objects caller data may nest: far beyond any tool's real arguments
or schema, far below what recursive code (the JSON Schema validator, the JSON encoder)
can follow on a server's stack."""


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if chr(b) in "[{" else -1 if chr(b) in "]}" else 0 for b in range(256)]


class DocumentError(ValueError):
    """A caller's text or value is refused; the message says what is wrong and where."""


class NestingError(DocumentError):
    """The text or value nests deeper than allowed."""


def nests_deeper(raw: bytes, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than `limit`, without
    parsing it: a text with fewer brackets cannot; else strings are removed, brackets kept
    and the depth summed by C-level iteration (a few ns per byte)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, skeleton)), default=0) > limit


def nesting_problem(value: Any, limit: int = MAX_NESTING, *, what: str = "the value") -> str | None:
    """None when `value` nests at most `limit` arrays/objects deep, else where it goes deeper.
    Walks with an explicit stack, so any depth is safe to look at."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list | tuple):
            children = enumerate(item)
        else:
            continue
        if depth + 1 > limit:
            return f"nesting deeper than {limit} levels in {what} (at {_short(where or '/')})"
        stack.extend((child, depth + 1, f"{where}/{key}") for key, child in children)
    return None


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _refuse_constant(name: str) -> Any:
    raise DocumentError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise DocumentError(f"{text[:20]}… is out of range for a JSON number")
    return number


def load_json(
    text: str | bytes, *, max_bytes: int, max_depth: int = MAX_NESTING, what: str = "the body"
) -> Any:
    """The JSON value of a caller's text, refused before parsing when it is too large.

    Raises:
        DocumentError: too large, not JSON, nested deeper than `max_depth`, or NaN/Infinity.
    """
    size = len(text.encode(errors="surrogatepass") if isinstance(text, str) else text)
    if size > max_bytes:
        raise DocumentError(f"{what} is {size} bytes; the limit is {max_bytes}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        # The C parser stops at the interpreter's recursion limit: far past ours.
        raise NestingError(f"{what} nests deeper than {max_depth} levels") from None
    except DocumentError:
        raise
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many int digits
        raise DocumentError(f"{what} is not valid JSON: {error}") from None
    if nests_deeper(text.encode(errors="surrogatepass") if isinstance(text, str) else text, max_depth):
        raise NestingError(f"{what} nests deeper than {max_depth} levels")
    return value
