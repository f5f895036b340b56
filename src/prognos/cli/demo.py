"""``prognos demo``: the whole product on one machine, in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from prognos.cli.app import app


@app.command()
def demo(
    engines: Annotated[int, typer.Option(min=1, help="engines in the fleet (each replaced when it fails)")] = 30,
    speed: Annotated[float, typer.Option(help="cycles per second per engine")] = 2.0,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds (default: Ctrl-C)")] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="train a new quick model even if one exists")] = False,
    epochs: Annotated[int, typer.Option(min=1, help="max epochs per member of the quick model")] = 10,
    members: Annotated[int, typer.Option(min=2, help="ensemble members of the quick model")] = 3,
) -> None:
    """Train a quick model (or reuse it), serve it with the fleet app and a living fleet until Ctrl-C.
    State lives in the data dir: PROGNOS_DATA_DIR, else the nearest .prognos/ here or above, else ~/.prognos
    (`make demo`: .prognos/ in the checkout). One demo per data dir: a second names the running one."""
    from prognos.config import get_settings
    from prognos.demo import DemoOptions, run_demo

    run_demo(get_settings(), DemoOptions(engines, speed, duration, retrain, epochs, members), say=typer.echo)
