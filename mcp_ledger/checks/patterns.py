"""Regular expressions from caller-registered JSON Schemas, run on RE2 (linear time).

A `pattern` or `patternProperties` key in a tool's schema is the registering tenant's code
running on every call of that tool; with a backtracking engine, `^(a+)+$` against 30
characters takes minutes and stalls every tenant. RE2 matches in time linear in the input
and refuses what it cannot do that way (backreferences, lookaround), so registration
refuses those patterns with RE2's reason. Owns compiling (cached, bounded memory, errors
not logged) and searching; where patterns sit in a schema is schemas.py's business.
"""

from __future__ import annotations

import functools
from typing import Any

import re2  # type: ignore[import-untyped]

MAX_PATTERN_MEMORY = 8 * 1024 * 1024
"""RE2's memory budget per compiled pattern: `(a{1000}){1000}` is refused, not built."""


class PatternError(ValueError):
    """RE2 cannot compile the pattern; the message is RE2's reason."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's error, not ours to log
    options.never_capture = True  # only whether it matches counts
    options.max_mem = MAX_PATTERN_MEMORY
    return options


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _options())
    except re2.error as error:
        reason = error.args[0] if error.args else "unknown error"
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise PatternError(text) from None


def pattern_problem(pattern: str) -> str | None:
    """None when RE2 can run `pattern`, else why not, in one sentence."""
    try:
        _compiled(pattern)
    except PatternError as error:
        return (
            f"the pattern {pattern[:200]!r} is not supported: {error} "
            "(patterns run on RE2: no backreferences or lookaround)"
        )
    return None


def matches(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (JSON Schema's unanchored search).

    Raises:
        PatternError: RE2 cannot compile the pattern.
    """
    # Bytes, so a lone surrogate (legal in JSON text) cannot break the UTF-8 encoding.
    return _compiled(pattern).search(text.encode("utf-8", "surrogatepass")) is not None
