"""Benchmarks: a load generator for any OpenAI-compatible endpoint, with the documented metric definitions.

- ``workload``: ``LengthSpec`` (D/N/U length notation), ``Level`` (closed-loop concurrency or Poisson rate).
- ``runner``: ``BenchConfig``, ``run_benchmark(config, on_event) -> BenchRun`` (async), ``BenchEvent``.
- ``metrics``: ``compute_level`` -> ``LevelMetrics`` (TTFT, TPOT, ITL, E2E, throughput, goodput, errors), ``Slo``.
- ``store``: ``BenchStore`` over ``<data_dir>/bench.db`` (``db.Database``): ``save``, ``list_runs``, ``get_run``.
- ``report``: rich summary table, JSON and CSV files.
"""
