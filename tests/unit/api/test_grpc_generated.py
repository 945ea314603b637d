"""The committed protoc output matches proto/mcp_tool_service.proto (regenerate on change)."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[3]
GENERATED = "mcp_ledger/grpc_api/generated"


def test_the_committed_generated_messages_match_the_proto(tmp_path: Path) -> None:
    status = protoc.main(
        [
            "protoc",
            f"-I{GENERATED}={ROOT / 'proto'}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(ROOT / "proto" / "mcp_tool_service.proto"),
        ]
    )
    assert status == 0
    for name in ("mcp_tool_service_pb2.py", "mcp_tool_service_pb2.pyi"):
        fresh = (tmp_path / GENERATED / name).read_text()
        assert fresh == (ROOT / GENERATED / name).read_text(), (
            f"{name} is stale: regenerate it (see generated/__init__.py)"
        )
