"""CLI subcommands; every module here exposes ``register(app: typer.Typer)``."""
