"""The session notes and the plans' statuses checked for linearizability by porcupine
(github.com/anishathalye/porcupine), the checker the field uses, beside the small Python
register check in operations.py.

Owns building tests/faults/porcupine (a Go command around two porcupine models) with the
machine's Go, once per version of its source, into a cache directory, and turning a recorded
load into its histories. Notes: each note (a client's session and key) is a register; a write
the agent got no answer for stays pending to the end (it may have taken effect); a read that
failed says nothing and is left out. Plans: each plan's status is a monotone register the
gateway moves (accepted -> running -> settled); an acknowledged create_plan starts it and every
plan_status read answered ok must see it at or past what the reads before it saw. Timestamps
are the agent's monotonic clock in nanoseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.faults.operations import Operation

SOURCE = Path(__file__).parent / "porcupine"
BUILD_SECONDS = 600
CHECK_SECONDS = 60


class PorcupineUnavailableError(RuntimeError):
    """The checker could not be built (no Go, or the module could not be fetched)."""


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "mcp-ledger" / "porcupine"


def checker() -> Path:
    """The built checker, building it first when its source changed.

    Raises:
        PorcupineUnavailableError: Go is missing or the build failed (its output says why).
    """
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((SOURCE / name).read_bytes())
    binary = _cache_dir() / f"notes-linearizability-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise PorcupineUnavailableError("no go on PATH")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".tmp")
    done = subprocess.run(
        [go, "build", "-buildvcs=false", "-o", str(partial), "."],
        cwd=SOURCE,
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise PorcupineUnavailableError(f"go build failed: {done.stderr[-2000:]}")
    partial.replace(binary)  # never a half-written binary under the final name
    return binary


def history(operations: list[Operation]) -> list[dict[str, Any]]:
    """The notes' operations as porcupine's input."""
    entries = []
    for op in operations:
        if op.tool not in {"note_set", "note_get"} or (op.tool == "note_get" and op.outcome != "ok"):
            continue
        entry: dict[str, Any] = {
            "client": op.client,
            "register": f"{op.client}/{op.arguments['key']}",
            "call": int(op.invoked * 1e9),
            "return": int(op.completed * 1e9) if op.outcome == "ok" else None,
        }
        if op.tool == "note_set":
            entry |= {"op": "set", "value": str(op.arguments["value"])}
        else:
            found = bool((op.result or {}).get("found"))
            value = (op.result or {}).get("value")
            entry |= {"op": "get", "found": found, "value": str(value) if found else None}
        entries.append(entry)
    return entries


def plan_history(operations: list[Operation]) -> list[dict[str, Any]]:
    """The acknowledged create_plan calls and the plan_status reads answered ok, as porcupine's
    input (the create answer's own status is not a read of the view, so it only starts the
    register)."""
    entries = []
    for op in operations:
        if op.outcome != "ok" or op.tool not in {"create_plan", "plan_status"}:
            continue
        plan_id = str((op.arguments.get("plan") or {}).get("plan_id") or op.arguments.get("plan_id"))
        entry: dict[str, Any] = {
            "client": op.client,
            "register": plan_id,
            "call": int(op.invoked * 1e9),
            "return": int(op.completed * 1e9),
            "op": "create" if op.tool == "create_plan" else "status",
        }
        if op.tool == "plan_status":
            entry["value"] = str((op.result or {}).get("status"))
        entries.append(entry)
    return entries


def _check(model: str, entries: list[dict[str, Any]]) -> str:
    done = subprocess.run(
        [str(checker())],
        input=json.dumps({"model": model, "operations": entries}),
        capture_output=True,
        text=True,
        timeout=CHECK_SECONDS,
        check=False,
    )
    if done.returncode not in (0, 1, 2):
        raise PorcupineUnavailableError(f"the checker failed: {done.stderr[-2000:]}")
    return str(json.loads(done.stdout)["result"])


def verdict(operations: list[Operation]) -> str:
    """porcupine's result for the notes: "Ok", "Illegal" or "Unknown" (its check timed out).

    Raises:
        PorcupineUnavailableError: the checker could not be built.
    """
    return _check("notes", history(operations))


def plan_verdict(operations: list[Operation]) -> str:
    """porcupine's result for the plans' statuses: "Ok", "Illegal" or "Unknown".

    Raises:
        PorcupineUnavailableError: the checker could not be built.
    """
    return _check("plans", plan_history(operations))
