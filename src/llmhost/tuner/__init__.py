"""The autotuner: search llama-server parameters with real trial engines, scored by the benchmark."""
