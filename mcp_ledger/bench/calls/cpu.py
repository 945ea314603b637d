"""CPU seconds of benchmark processes, read from /proc: the cost of a call that other load on
a shared machine disturbs far less than wall-clock time.

Owns finding a service's processes (the process listening on its port and that process's
descendants, e.g. PostgreSQL's backends) and summing user+system time over them. Linux only;
elsewhere every reading is None and the benches print "-".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is parenthesised and may hold spaces: split after its closing bracket.
    return text.rsplit(")", 1)[1].split()


def process_cpu(pid: int) -> float | None:
    """User+system seconds of one process and of its children it has waited for."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def with_descendants(roots: Iterable[int]) -> list[int]:
    """The roots and every live process below them."""
    tree, found, todo = _children(), [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, ()))
    return found


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            # state 0A is LISTEN; the local address ends in the port in hex.
            if columns[3] == "0A" and int(columns[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(columns[9])
    return inodes


def _fd_links(process: Path) -> Iterator[str]:
    # Descriptors come and go while they are read (a broker has thousands): skip the gone ones.
    try:
        descriptors = list((process / "fd").iterdir())
    except OSError:
        return
    for descriptor in descriptors:
        try:
            yield os.readlink(descriptor)
        except OSError:
            continue


def listening_pids(port: int) -> list[int]:
    """Processes holding a socket listening on `port` (the ones this user may inspect)."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    pids: list[int] = []
    for entry in PROC.iterdir() if inodes else ():
        if not entry.name.isdigit():
            continue
        if any(link in inodes for link in _fd_links(entry)):
            pids.append(int(entry.name))
    return pids


@dataclass
class CpuMeter:
    """CPU seconds per named group of processes between `start` and `stop`."""

    groups: Mapping[str, list[int]]
    _before: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        readings: dict[str, float] = {}
        for name, pids in self.groups.items():
            values = [process_cpu(pid) for pid in with_descendants(pids)]
            readings[name] = sum(value for value in values if value is not None)
        return readings

    def start(self) -> None:
        """Take the first reading."""
        self._before = self._read()

    def per_call_ms(self, calls: int) -> dict[str, float]:
        """Milliseconds of CPU per call for each group since `start`."""
        after = self._read()
        return {
            name: round((after[name] - self._before.get(name, 0.0)) / max(calls, 1) * 1000, 3)
            for name in self.groups
        }
