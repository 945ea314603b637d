"""Operations: traces, metrics, structured logs, readiness and the AsyncAPI document.

Each module owns one concern; bootstrap wires them around the ports (bus, event store, tool
runners) as decorators, so adapters and handlers stay unaware of them.
"""
