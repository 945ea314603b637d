"""The layout of a plan's DAG as a picture: each task a box in the column of its depth.

Pure: from the plan view's tasks (with their dependencies) to boxes and edges in SVG
coordinates, which the plan template draws as inline SVG (no script needed to see it; the
live script only changes each box's state). A task's column is the length of the longest
dependency chain leading to it, so every edge points right. Boxes are named by their
position in the plan (`task-0`, …), never by their ids, which are the caller's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mcp_ledger.projections.plans.view import TaskView

BOX_WIDTH, BOX_HEIGHT = 180, 64
COLUMN, ROW, MARGIN = 240, 88, 16


@dataclass(frozen=True, slots=True)
class Box:
    dom_id: str
    task_id: str
    task: TaskView
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True, slots=True)
class Drawing:
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int


def _depths(tasks: Mapping[str, TaskView]) -> dict[str, int]:
    depths: dict[str, int] = {}

    def depth(task_id: str, seen: frozenset[str]) -> int:
        if task_id in depths:
            return depths[task_id]
        parents = [p for p in tasks[task_id].dependencies if p in tasks and p not in seen]
        found = 1 + max((depth(p, seen | {task_id}) for p in parents), default=-1)
        depths[task_id] = found
        return found

    for task_id in tasks:
        depth(task_id, frozenset())
    return depths


def layout(tasks: Mapping[str, TaskView]) -> Drawing:
    """Boxes and edges for the tasks, in plan order within each column."""
    depths = _depths(tasks)
    rows: dict[int, int] = {}
    boxes: dict[str, Box] = {}
    for number, (task_id, task) in enumerate(tasks.items()):
        column = depths[task_id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        boxes[task_id] = Box(f"task-{number}", task_id, task, MARGIN + column * COLUMN, MARGIN + row * ROW)
    edges = tuple(
        Edge(
            boxes[parent].x + BOX_WIDTH,
            boxes[parent].y + BOX_HEIGHT // 2,
            box.x,
            box.y + BOX_HEIGHT // 2,
        )
        for box in boxes.values()
        for parent in box.task.dependencies
        if parent in boxes
    )
    columns = max(depths.values(), default=0) + 1
    height = max(rows.values(), default=1)
    return Drawing(
        tuple(boxes.values()),
        edges,
        width=2 * MARGIN + (columns - 1) * COLUMN + BOX_WIDTH,
        height=2 * MARGIN + (height - 1) * ROW + BOX_HEIGHT,
    )
