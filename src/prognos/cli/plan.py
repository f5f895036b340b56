"""``prognos plan``: the maintenance plan from the fleet database (the same function as ``GET /api/v1/plan``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from prognos.cli.app import app, choice, database_label, fleet_store


@app.command()
def plan(
    horizon: Annotated[int, typer.Option("--horizon", min=0, max=10_000,  # prognos.fleet.plan.MAX_HORIZON
                                         help="cycles ahead to plan for")] = 30,
    format: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Engines to take out of service within N cycles, most urgent first, with the probability implied
    by the calibrated interval and their data quality."""
    from prognos.fleet.plan import build_plan

    choice("--format", format, ("table", "json", "csv"))
    settings, store = fleet_store(existing=True)
    result = build_plan(store, horizon, settings.critical_rul)
    if result.engines_considered == 0:  # on stderr: json and csv on stdout stay parseable
        typer.echo(f"note: the fleet database {database_label(settings)} has no engines yet (ingest readings: "
                   "prognos ingest, prognos simulate or make demo)", err=True)
    if format == "json":
        typer.echo(json.dumps(result.to_dict(), indent=1))
        return
    if format == "csv":
        typer.echo(result.to_csv(), nl=False)
        return
    typer.echo(f"maintenance plan: {len(result.items)} of {result.engines_considered} engines reach the critical "
               f"threshold ({result.critical_rul:g} cycles) within {result.horizon} cycles"
               + (f"; {result.engines_unscored} without a prediction" if result.engines_unscored else ""))
    if not result.items:
        return
    typer.echo(f"{'#':>3}  {'engine':<20}  {'due in':>6}  {'P':>5}  {'RUL':>6}  {'interval':>13}  "
               f"{'status':<8}  data")
    for rank, i in enumerate(result.items, 1):
        interval = f"{i.lower:.0f}–{i.upper:.0f}"
        typer.echo(f"{rank:>3}  {i.engine_id:<20}  {i.due_in:>6.0f}  {i.probability:>5.0%}  {i.rul:>6.1f}  "
                   f"{interval:>13}  {i.status:<8}  {','.join(i.data_quality) or 'ok'}")
