"""The `tracer` command line: one subcommand per stage, each a thin layer over one function.

Subcommands live in ``tracer.commands.<stage>`` modules; each exposes ``register(app)``.
User mistakes raise :class:`tracer.errors.UserError` and end as one line on stderr with exit code 2.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from tracer.errors import UserError

app = typer.Typer(
    name="tracer",
    help="Generative recommendation over semantic IDs, with concept erasure (TRACER).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    import tracer.commands as commands

    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tracer.commands.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        app(args=argv, prog_name="tracer")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
