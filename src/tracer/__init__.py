"""tracer: generative recommendation over semantic IDs, with concept erasure (TRACER)."""

__version__ = "0.1.0"
