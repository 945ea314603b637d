"""The call-path benchmarks: latency, throughput and CPU per call through each gateway path
against a plain SDK server (paths), CPU readings of processes (cpu), scale-out over workers
and API replicas (scaleout), and cost with history (history)."""
