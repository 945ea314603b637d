"""The benches' CPU readings: a service is found by its listening port, and CPU spent in a
metered process between start and the reading is counted per call."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from mcp_ledger.bench.calls.cpu import CpuMeter, listening_pids

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")


def test_the_process_listening_on_a_port_is_found_by_that_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert os.getpid() in listening_pids(listener.getsockname()[1])
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening
        assert listening_pids(unused.getsockname()[1]) == []


BURN = """
import time
started = time.process_time()
while time.process_time() - started < 0.3:
    pass
print("burnt", flush=True)
time.sleep(60)
"""


def test_cpu_spent_by_a_metered_child_between_start_and_reading_is_counted_per_call() -> None:
    with subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True) as burner:
        try:
            meter = CpuMeter({"burner": [burner.pid], "idle": []})
            meter.start()
            assert burner.stdout is not None
            assert burner.stdout.readline().strip() == "burnt"  # bounded by pytest-timeout
            reading = meter.per_call_ms(10)
        finally:
            burner.kill()
    assert reading["burner"] >= 25  # at least 300 ms over 10 calls
    assert reading["idle"] == 0
