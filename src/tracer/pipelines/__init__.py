"""End-to-end pipelines: the benchmark grid and the demo."""
