"""The typer application every ``prognos.cli`` module adds its commands to, and the options and
helpers several of them share. Commands parse options, call one library function and print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prognos.errors import ConfigError

if TYPE_CHECKING:
    from prognos.config import Settings
    from prognos.fleet.store import FleetStore
    from prognos.lifecycle.registry import Registry

__all__ = ["ByOpt", "DataDir", "Dataset", "RegistryOpt", "VersionArg", "app", "choice", "data_dir",
           "database_label", "fleet_store", "open_registry_at", "state_location"]

def _flags_without_a_type() -> None:
    """typer 0.29 prints a flag as ``--retrain <bool>``, as if it took a value: show no type for flags."""
    from typing import Any

    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_a_type()

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="prognos: Remaining-Useful-Life models — train, evaluate, bundle, serve, run a fleet.")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="C-MAPSS folder or zip [env PROGNOS_CMAPSS_DIR]")]
Dataset = Annotated[str, typer.Option("--dataset", help="FD001, FD002, FD003 or FD004 (SYNTHETIC: the demo's "
                                                        "generated files)")]
RegistryOpt = Annotated[str | None, typer.Option("--registry", help="directory or s3://bucket/prefix "
                                                 "[env PROGNOS_REGISTRY_DIR, default <data dir>/registry]")]
ByOpt = Annotated[str | None, typer.Option("--by", help="who does this (default: the login name)")]
VersionArg = Annotated[str, typer.Argument(help="version number (3 or v3), alias (production) or bundle version")]


def choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a usage error (exit 2) naming the option."""
    if value not in allowed:
        listed = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise ConfigError(f"{option} must be {listed}, not {value!r}")
    return value


def data_dir(given: Path | None) -> Path:
    """The C-MAPSS location: the option, else PROGNOS_CMAPSS_DIR."""
    from prognos.config import get_settings

    path = given or get_settings().cmapss_dir
    if path is None:
        raise ConfigError("no data directory: pass --data-dir or set PROGNOS_CMAPSS_DIR")
    return path


def state_location(settings: Settings) -> str:
    """Which data dir this is and why (the same rule as :func:`prognos.config.default_data_dir`)."""
    from prognos.config import default_data_dir

    if settings.data_dir != default_data_dir():
        return f"{settings.data_dir} (PROGNOS_DATA_DIR)"
    if settings.data_dir != Path.home() / ".prognos":
        return f"{settings.data_dir} (found in the current directory or a parent)"
    return f"{settings.data_dir} (the default: no PROGNOS_DATA_DIR, no .prognos/ here or in a parent)"


def database_label(settings: Settings) -> str:
    """The fleet database as a person can find it: the SQLite file, or the URL without its password."""
    if settings.database_url is None:
        return str(settings.data_dir / "prognos.db")
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def fleet_store(*, existing: bool = False) -> tuple[Settings, FleetStore]:
    """The fleet database of the current settings. ``existing=True`` (commands that only read): a
    SQLite file that is not there is an error naming where it was looked for, never a new, empty one."""
    from prognos.config import get_settings
    from prognos.errors import NotFoundError
    from prognos.fleet import open_store

    settings = get_settings()
    if existing and settings.database_url is None and not (settings.data_dir / "prognos.db").is_file():
        raise NotFoundError(
            f"no fleet database at {database_label(settings)}; data dir {state_location(settings)}. Run the "
            "command where `make demo` ran (its checkout), or set PROGNOS_DATA_DIR to the data dir the demo or "
            "server printed")
    return settings, open_store(settings)


def open_registry_at(location: str | None) -> Registry:
    from prognos.config import get_settings
    from prognos.lifecycle.registry import open_registry

    settings = get_settings(registry_dir=location)
    return open_registry(settings.registry_location, settings.registry_cache)
