"""The autotuner: search llama-server parameters with real trial engines, scored by the benchmark.

- ``space``: ``SearchSpace`` (YAML or presets) with known constraints.
- ``strategies``: ``Strategy`` (suggest / tell / state / from_state): grid, random, Optuna TPE.
- ``objective``: ``Objective`` (throughput, goodput, latency percentiles) and its SLO constraints.
- ``executor``: the ``Executor`` interface and ``LocalLlamaServerExecutor``.
- ``job``: ``TuneConfig``, ``TuningJob`` (async ``run``, events, resume), ``JobSummary``.
- ``store``: ``TunerStore`` (jobs and trials in bench.db); ``events``: ``TuneEvent``, ``EventHub`` (callbacks, queues).
- ``compare``: TPE against the full grid; ``importance``: ``param_importances`` (fANOVA) for the Tuning page.
"""
