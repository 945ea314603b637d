"""Seeded synthetic plan graphs for `mcp-ledger bench plans`, and their physical limits.

Shapes: chain, fan-out/fan-in, stacked diamonds, random layered. Every task calls the same
fake tool, so with a fixed latency the critical path (longest dependency chain x latency)
is the shortest makespan any executor could reach, and n x latency is sequential execution.
"""

from __future__ import annotations

import random
from typing import Any

SHAPES = ("chain", "fan", "diamond", "layered")


def _task(index: int, deps: list[int], tool: str) -> dict[str, Any]:
    return {
        "id": f"t{index}",
        "tool_name": tool,
        "parameters": {"n": index},
        "dependencies": [f"t{d}" for d in deps],
    }


def dag(shape: str, size: int, seed: int, tool: str = "fake") -> list[dict[str, Any]]:
    """Tasks of one synthetic graph with `size` nodes.

    Raises:
        ValueError: an unknown shape.
    """
    if shape == "chain":
        return [_task(i, [i - 1] if i else [], tool) for i in range(size)]
    if shape == "fan":
        middle = list(range(1, size - 1))
        return [_task(0, [], tool), *(_task(i, [0], tool) for i in middle), _task(size - 1, middle, tool)]
    if shape == "diamond":
        return _diamonds(size, tool)
    if shape == "layered":
        return _layered(size, random.Random(seed), tool)
    raise ValueError(f"unknown shape {shape!r}")


def _diamonds(size: int, tool: str) -> list[dict[str, Any]]:
    """Diamonds stacked top to bottom (a -> b, c -> d = next a), trimmed to `size` nodes."""
    tasks = [_task(0, [], tool)]
    top = 0
    while len(tasks) < size:
        left, right, bottom = len(tasks), len(tasks) + 1, len(tasks) + 2
        tasks += [_task(left, [top], tool), _task(right, [top], tool), _task(bottom, [left, right], tool)]
        top = bottom
    return tasks[:size]


def _layered(size: int, rng: random.Random, tool: str) -> list[dict[str, Any]]:
    """Layers of random width (1-12); each node depends on 1-3 nodes of the layer above."""
    tasks: list[dict[str, Any]] = []
    previous: list[int] = []
    while len(tasks) < size:
        width = min(rng.randint(1, 12), size - len(tasks))
        layer = list(range(len(tasks), len(tasks) + width))
        for index in layer:
            deps = rng.sample(previous, min(len(previous), rng.randint(1, 3))) if previous else []
            tasks.append(_task(index, sorted(deps), tool))
        previous = layer
    return tasks


def critical_path_length(tasks: list[dict[str, Any]]) -> int:
    """Nodes on the longest dependency chain (tasks are listed in topological order)."""
    depth: dict[str, int] = {}
    for task in tasks:
        depth[task["id"]] = 1 + max((depth[d] for d in task["dependencies"]), default=0)
    return max(depth.values())
