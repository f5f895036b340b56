"""The ``prognos`` command, one module per domain; each command parses options, calls one library
function and prints.

============  ===================================================================
module        commands
============  ===================================================================
model         ``data fetch``, ``train``, ``evaluate``, ``predict``
serve         ``serve``
fleet         ``keys``, ``ingest``, ``retention``, ``db``, ``simulate``
mqtt          ``mqtt`` (headless MQTT ingestion)
plan          ``plan`` (the maintenance plan)
models        ``models`` (the registry)
lifecycle     ``tune``, ``drift report``, ``failure``
demo          ``demo``
============  ===================================================================

A new domain is a module that adds commands to :data:`prognos.cli.app.app`, named in ``DOMAINS`` below.

Exit codes: a user mistake never prints a traceback, only one ``error: …`` line on stderr and
the exit code of its class in the drawing in :mod:`prognos.errors` (3 bad data, 4 bundle, 5 not
found, …). Besides those:

====  ==========================================================================
0     done; also when the reader of stdout goes away early (``prognos predict … | head``)
2     usage: unknown command or option, missing or malformed option value (and a command
      group called without a command, after printing its help)
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Any, NoReturn

import typer

from prognos.cli.app import app
from prognos.errors import PrognosError

__all__ = ["app", "main"]

# Importing a module registers its commands; this order is the order of `prognos --help`.
DOMAINS = ("model", "serve", "fleet", "mqtt", "plan", "models", "lifecycle", "demo")
for _name in DOMAINS:
    importlib.import_module(f"prognos.cli.{_name}")


def _version(value: bool) -> None:
    if value:
        from prognos import __version__

        typer.echo(f"prognos {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", is_eager=True,
                                          callback=_version)] = False,
) -> None:
    """prognos: Remaining-Useful-Life models — train, evaluate, bundle, serve, run a fleet."""


def _fail(message: str, code: int) -> NoReturn:
    typer.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(code)


def _usage_error(exc: Any) -> NoReturn:
    """typer's (or click's) parse errors as one line: the problem and where to look for help."""
    message = exc.format_message()
    if not message:  # a group called without a command: its help is already on the screen
        sys.exit(int(getattr(exc, "exit_code", 2)))
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None and getattr(ctx, "command_path", None) else ""
    _fail(f"{message}{where}", int(getattr(exc, "exit_code", 2)))


def _quiet_broken_pipe() -> NoReturn:
    # The reader went away (`prognos predict … | head`): what it wanted it got. Point stdout at
    # /dev/null so the interpreter's final flush does not complain, and exit 0.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
    sys.exit(0)


def _parse_exceptions() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [typer.TyperException]  # typer >= 0.29 raises its own click copies
    try:
        import click

        kinds.append(click.ClickException)  # what older typers and plain click commands raise
    except ImportError:
        pass
    return tuple(kinds)


def main() -> None:
    """Console entry point: run the app, turning every user mistake into one line and an exit code."""
    try:
        try:
            code = app(prog_name="prognos", standalone_mode=False)
            sys.stdout.flush()
        except PrognosError as exc:
            _fail(str(exc), exc.exit_code)
        except _parse_exceptions() as exc:
            _usage_error(exc)
        except (typer.Abort, KeyboardInterrupt):
            _fail("interrupted", 130)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except SystemExit:
            # typer answers a closed stdout (EPIPE) with exit 1 after wrapping the streams in
            # click's PacifyFlushWrapper: that wrapper is how we know it was the pipe.
            if type(sys.stdout).__name__ == "PacifyFlushWrapper":
                _quiet_broken_pipe()
            raise
    except BrokenPipeError:
        _quiet_broken_pipe()
    if isinstance(code, int) and code:  # e.g. `--help` returns 0, a no-command group 2
        sys.exit(code)
