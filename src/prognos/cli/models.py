"""Registry commands: ``models list|register|approve|promote|rollback|show|archive``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prognos.cli.app import ByOpt, RegistryOpt, VersionArg, app, choice, open_registry_at

models_app = typer.Typer(no_args_is_help=True, help="The model registry: versions, approval, aliases.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    registry: RegistryOpt = None,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """List the registered versions with their status and aliases (json: a list of version objects)."""
    choice("--format", format, ("table", "json"))
    reg = open_registry_at(registry)
    index = reg.index()
    rows = [v.to_dict(index.aliases_of(v.version)) for v in index.versions]
    if format == "json":
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo(f"no versions in {reg.store.url}; add one with `prognos models register BUNDLE`")
        return
    typer.echo(f"{'version':>7}  {'status':<8}  {'aliases':<20}  {'dataset':<7}  {'model':<5}  {'RMSE':>6}  "
               f"{'registered':<20}  bundle")
    for r in rows:
        rmse = r["metrics"].get("rmse")
        rmse_text = f"{rmse:.2f}" if isinstance(rmse, int | float) else "-"
        typer.echo(f"{r['version']:>7}  {r['status']:<8}  {','.join(r['aliases']) or '-':<20}  {r['dataset']:<7}  "
                   f"{r['model']:<5}  {rmse_text:>6}  {r['registered_at']:<20}  {r['bundle_version']}")


@models_app.command("register")
def models_register(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    registry: RegistryOpt = None,
    source_run: Annotated[str | None, typer.Option("--source-run", help="e.g. the MLflow run id")] = None,
    by: ByOpt = None,
) -> None:
    """Verify a bundle and add it as a new pending version (it becomes the `candidate`)."""
    result = open_registry_at(registry).register(bundle, source_run=source_run, actor=by)
    v = result.version
    if result.created:
        typer.echo(f"registered {bundle} as version {v.version} (pending approval; alias candidate)")
    else:
        typer.echo(f"{bundle} is already registered as version {v.version} ({v.status})")


@models_app.command("approve")
def models_approve(version: VersionArg, registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Approve a pending version for production."""
    v = open_registry_at(registry).approve(version, actor=by)
    typer.echo(f"version {v.version} approved by {v.approved_by} at {v.approved_at}")


@models_app.command("promote")
def models_promote(version: VersionArg, registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Point `production` at an approved version (servers following the alias hot-swap to it)."""
    move = open_registry_at(registry).promote(version, actor=by)
    if move.moved:
        typer.echo(f"production: version {move.previous if move.previous is not None else '-'} -> {move.current}")
    else:
        typer.echo(f"version {move.current} is already in production")


@models_app.command("rollback")
def models_rollback(registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Move `production` back to the previous production version."""
    move = open_registry_at(registry).rollback(actor=by)
    typer.echo(f"production rolled back: version {move.previous} -> {move.current}")


@models_app.command("show")
def models_show(version: VersionArg, registry: RegistryOpt = None) -> None:
    """Print one version's metadata and history as JSON."""
    reg = open_registry_at(registry)
    index = reg.index()
    v = reg.get(version)
    doc = v.to_dict(index.aliases_of(v.version))
    doc["events"] = [e.model_dump() for e in index.events if e.version == v.version]
    typer.echo(json.dumps(doc, indent=1))


@models_app.command("archive")
def models_archive(version: VersionArg, registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Retire a version (not the one in production)."""
    v = open_registry_at(registry).archive(version, actor=by)
    typer.echo(f"version {v.version} archived at {v.archived_at}")
