"""semantic_ids stage."""
