"""Typer root: global options, error handling, and registration of the command modules.

Command modules import nothing heavy at module level so `livi --help` stays instant.
"""
from __future__ import annotations

import importlib
import os
import sys

import typer

from livi_cli import __version__

app = typer.Typer(
    name="livi",
    help="Find cover versions and duplicate recordings in your own music library.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each module exposes register(app). Order here is the order in `livi --help`.
REGISTERED = [
    "livi_cli.cli.models_cmd",
    "livi_cli.cli.scan_cmd",
    "livi_cli.cli.search_cmd",
    "livi_cli.cli.groups_cmd",
    "livi_cli.cli.status_cmd",
    "livi_cli.cli.eval_cmd",
    "livi_cli.cli.train_cmd",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"livi {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Find cover versions and duplicate recordings in your own music library."""


for _name in REGISTERED:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry: LiviError → `error: …` on stderr, exit 1; Ctrl-C → quiet exit 130."""
    from livi_cli.errors import LiviError

    debug = os.environ.get("LIVI_DEBUG") == "1"
    try:
        rc = app(standalone_mode=False)  # click returns the exit code of typer.Exit here
        sys.exit(rc if isinstance(rc, int) else 0)
    except LiviError as exc:
        if debug:
            raise
        from livi_cli.cli.console import err_console

        err_console.print(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click usage errors and unexpected failures
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set LIVI_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(1)
