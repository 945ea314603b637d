"""Print the package graph of mcp_ledger: for each package, the project packages it imports.

    uv run python scripts/package_graph.py            # top-level packages
    uv run python scripts/package_graph.py --depth 2  # one level further (domain.plans, ...)

It reads the same import graph as `lint-imports` (grimp), so what it prints is what the
contracts in pyproject.toml are checked against.
"""

from __future__ import annotations

import argparse

import grimp


def package_of(module: str, depth: int) -> str:
    """The package a module belongs to, `depth` levels below mcp_ledger."""
    return ".".join(module.split(".")[: depth + 1])


def package_graph(depth: int) -> dict[str, set[str]]:
    """Each package at `depth` to the other packages at `depth` it imports."""
    graph = grimp.build_graph("mcp_ledger")
    edges: dict[str, set[str]] = {}
    for importer in graph.modules:
        source = package_of(importer, depth)
        edges.setdefault(source, set())
        for imported in graph.find_modules_directly_imported_by(importer):
            target = package_of(imported, depth)
            if target != source and target.startswith("mcp_ledger."):
                edges[source].add(target)
    return edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=1, help="package depth below mcp_ledger")
    depth = parser.parse_args().depth
    for package, imported in sorted(package_graph(depth).items()):
        if package == "mcp_ledger":
            continue
        names = ", ".join(sorted(name.removeprefix("mcp_ledger.") for name in imported)) or "-"
        print(f"{package.removeprefix('mcp_ledger.'):<28} -> {names}")


if __name__ == "__main__":
    main()
