"""unlearning stage."""
