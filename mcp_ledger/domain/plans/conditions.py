"""The tiny condition grammar of plan edges: parsed by hand, evaluated without eval.

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") operand]
    operand := NUMBER | STRING | true | false | null | path | "(" expr ")"
    path    := TASK "." ("output" | "status") ("." NAME | "." INDEX)*

A condition can only read upstream tasks' status and output and answer true or false:
it can skip a task of the frozen plan, never add or choose another call. Comparisons
between values of different kinds are false, never errors. The parser recurses per "(" and
"not", so both count towards MAX_CONDITION_DEPTH: a deeper condition is a ConditionError,
and the tree that evaluation walks is never deeper than that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?\d+(?:\.\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|<|>|\(|\)|\.)
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">=", "in"}
MAX_CONDITION_LENGTH = 1000
MAX_CONDITION_DEPTH = 32


class ConditionError(ValueError):
    """The condition does not parse; the message says where."""


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Path:
    task_id: str
    field: str
    steps: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


Node = Literal | Path | Not | BoolOp | Compare


def _tokenize(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"conditions are at most {MAX_CONDITION_LENGTH} characters")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConditionError(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "kw"
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._pos = 0
        self._depth = 0

    def _deeper(self) -> None:
        self._depth += 1
        if self._depth > MAX_CONDITION_DEPTH:
            raise ConditionError(
                f"conditions nest at most {MAX_CONDITION_DEPTH} levels of parentheses and 'not' "
                f"(token {self._pos})"
            )

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            wanted = repr(value) if value else "more"
            raise ConditionError(
                f"expected {wanted} at token {self._pos + 1}, got {token[1] if token else 'end'!r}"
            )
        self._pos += 1
        return token

    def parse(self) -> Node:
        node = self._bool("or", self._and)
        if self._peek() is not None:
            raise ConditionError(f"unexpected {self._peek()[1]!r} at token {self._pos + 1}")  # type: ignore[index]
        return node

    def _and(self) -> Node:
        return self._bool("and", self._not)

    def _bool(self, op: str, inner: Any) -> Node:
        operands = [inner()]
        while (token := self._peek()) is not None and token == ("kw", op):
            self._take()
            operands.append(inner())
        return operands[0] if len(operands) == 1 else BoolOp(op, tuple(operands))

    def _not(self) -> Node:
        if self._peek() == ("kw", "not"):
            self._take()
            self._deeper()
            operand = self._not()
            self._depth -= 1
            return Not(operand)
        left = self._operand()
        token = self._peek()
        if token is not None and token[1] in _COMPARISONS:
            self._take()
            return Compare(token[1], left, self._operand())
        return left

    def _operand(self) -> Node:
        kind, value = self._take()
        if kind == "number":
            return Literal(float(value) if "." in value else int(value))
        if kind == "string":
            return Literal(re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "kw" and value in {"true", "false", "null"}:
            return Literal({"true": True, "false": False, "null": None}[value])
        if value == "(":
            self._deeper()
            node = self._bool("or", self._and)
            self._take(")")
            self._depth -= 1
            return node
        if kind == "name":
            return self._path(value)
        raise ConditionError(f"unexpected {value!r} at token {self._pos}")

    def _path(self, task_id: str) -> Path:
        self._take(".")
        _, field = self._take()
        if field not in {"output", "status"}:
            raise ConditionError(f"{task_id}.{field}: a condition reads .output or .status")
        steps: list[str | int] = []
        while self._peek() == ("op", "."):
            self._take()
            kind, step = self._take()
            if kind not in {"name", "number", "kw"}:
                raise ConditionError(f"bad path step {step!r} after {task_id}.{field}")
            steps.append(int(step) if kind == "number" and step.isdigit() else step)
        return Path(task_id, field, tuple(steps))


def parse_condition(text: str) -> Node:
    """The syntax tree of a condition.

    Raises:
        ConditionError: it does not parse.
    """
    tokens = _tokenize(text)
    if not tokens:
        raise ConditionError("empty condition")
    return _Parser(tokens).parse()


def tasks_read(node: Node) -> set[str]:
    """The task ids a condition reads (they must be upstream of its task)."""
    if isinstance(node, Path):
        return {node.task_id}
    if isinstance(node, Not):
        return tasks_read(node.operand)
    if isinstance(node, BoolOp):
        return set().union(*(tasks_read(operand) for operand in node.operands))
    if isinstance(node, Compare):
        return tasks_read(node.left) | tasks_read(node.right)
    return set()


def evaluate(node: Node, tasks: Mapping[str, Mapping[str, Any]]) -> Any:
    """The value of a node given each task's {"status": …, "output": …}."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        current: Any = tasks.get(node.task_id, {}).get(node.field)
        for step in node.steps:
            if isinstance(current, Mapping):
                current = current.get(str(step))
            elif isinstance(current, list) and isinstance(step, int) and step < len(current):
                current = current[step]
            else:
                return None
        return current
    if isinstance(node, Not):
        return not truthy(evaluate(node.operand, tasks))
    if isinstance(node, BoolOp):
        values = (truthy(evaluate(operand, tasks)) for operand in node.operands)
        return any(values) if node.op == "or" else all(values)
    return _compare(node.op, evaluate(node.left, tasks), evaluate(node.right, tasks))


def truthy(value: Any) -> bool:
    """JSON truthiness: null, false, 0, "" and empty containers are false."""
    return bool(value)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right and type(left) is type(right)) or (_numbers(left, right) and left == right)
    if op == "!=":
        return not _compare("==", left, right)
    if op == "in":
        if isinstance(right, list):
            return any(_compare("==", left, item) for item in right)
        return isinstance(right, (str, dict)) and isinstance(left, str) and left in right
    comparable = _numbers(left, right) or (isinstance(left, str) and isinstance(right, str))
    if not comparable:
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])


def _numbers(left: Any, right: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))


def condition_holds(text: str, tasks: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the condition is true for these task results.

    Raises:
        ConditionError: it does not parse.
    """
    return truthy(evaluate(parse_condition(text), tasks))
