"""Speed and quality benchmarks; each writes JSON + a markdown table under benchmarks/results/."""
