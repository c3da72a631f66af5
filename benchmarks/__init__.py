"""Speed and quality benchmarks: data (JSON, PNG) under benchmarks/results/, write-ups in docs/benchmarks/."""
