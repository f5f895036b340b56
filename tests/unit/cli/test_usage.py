"""Every command of ``prognos``, found by walking the typer app (a new command is covered without
touching this file), given bad arguments: one ``error:`` line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from prognos import __version__, cli


def _commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk((*path, name), sub)

    yield from walk((), typer.main.get_command(cli.app))


COMMANDS = list(_commands())
LEAVES = [(path, c) for path, c in COMMANDS if not hasattr(c, "commands")]
GROUPS = [(path, c) for path, c in COMMANDS if hasattr(c, "commands")]


def _ids(items: list[tuple[tuple[str, ...], Any]]) -> list[str]:
    return [" ".join(path) or "prognos" for path, _ in items]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def prognos(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROGNOS_DATA_DIR", str(tmp_path / "state"))
    for name in ("PROGNOS_DATABASE_URL", "PROGNOS_BUNDLE", "PROGNOS_API_KEY", "PROGNOS_REGISTRY_DIR"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["prognos", *args])
        capsys.readouterr()
        code = 0
        try:
            cli.main()  # anything but SystemExit escaping here is a traceback a user would see
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def _one_usage_line(r: Run, *needles: str) -> None:
    lines = r.err.strip().splitlines()
    assert r.code == 2, r
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err + r.out
    for needle in needles:
        assert needle in lines[0], lines[0]


def _kind(param: Any) -> Any:
    """The Python type a parameter parses to (typer 0.29 keeps it in ``type_descriptor``; click in ``type``)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return descriptor.annotation
    return {"integer": int, "float": float}.get(getattr(param.type, "name", ""), str)


def _placeholder(param: Any) -> str:
    return {int: "1", float: "1.0"}.get(_kind(param), "x")


def test_the_walk_finds_every_domain() -> None:
    names = set(_ids(LEAVES))
    assert {"train", "predict", "serve", "keys create", "models list", "drift report", "demo"} <= names
    assert len(LEAVES) >= 20


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=_ids(LEAVES))
def test_unknown_option(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    _one_usage_line(prognos(*path, "--no-such-option"), "No such option", "--no-such-option")


# Commands called bare would run: only those with a required parameter are called without arguments.
REQUIRED = [(path, c) for path, c in LEAVES if any(p.required for p in c.params)]
NUMERIC = [(path, c) for path, c in LEAVES if any(_kind(p) in (int, float) for p in c.params)]
FORMATS = [(path, c) for path, c in LEAVES if any("--format" in p.opts for p in c.params)]


def test_each_kind_of_mistake_has_commands_to_try() -> None:
    assert len(REQUIRED) >= 5 and len(NUMERIC) >= 5 and len(FORMATS) >= 3


@pytest.mark.parametrize(("path", "command"), REQUIRED, ids=_ids(REQUIRED))
def test_missing_required(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    _one_usage_line(prognos(*path), "Missing")


@pytest.mark.parametrize(("path", "command"), NUMERIC, ids=_ids(NUMERIC))
def test_malformed_numbers(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    for param in [p for p in command.params if _kind(p) in (int, float)]:
        args = [*param.opts[:1], "many"] if param.param_type_name == "option" else ["many"]
        _one_usage_line(prognos(*path, *args), "Invalid value")


@pytest.mark.parametrize(("path", "command"), FORMATS, ids=_ids(FORMATS))
def test_unknown_format(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    args = [a for p in command.params if p.required and p.param_type_name == "option"
            for a in (p.opts[0], _placeholder(p))]
    args += [_placeholder(p) for p in command.params if p.required and p.param_type_name == "argument"]
    _one_usage_line(prognos(*path, *args, "--format", "yaml"), "--format", "yaml")


@pytest.mark.parametrize(("path", "command"), GROUPS, ids=_ids(GROUPS))
def test_mistyped_subcommand(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    _one_usage_line(prognos(*path, "frobnicate"), "No such command")


@pytest.mark.parametrize(("path", "command"), GROUPS, ids=_ids(GROUPS))
def test_a_group_alone_prints_its_help(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    r = prognos(*path)
    assert r.code == 2 and "Usage:" in r.out + r.err and "Traceback" not in r.out + r.err
    assert "error:" not in r.err


def _subprocess(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROGNOS_CMAPSS_DIR": "/nonexistent"}
    return subprocess.run([sys.executable, "-m", "prognos.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, **kw)


def test_version_and_a_typo_from_the_shell() -> None:
    r = _subprocess("--version")
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, f"prognos {__version__}", "")
    r = _subprocess("predcit")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == "error: No such command 'predcit'. Did you mean 'predict'? (see 'prognos --help')"


def test_a_reader_that_goes_away_is_not_an_error(tiny_bundle: Path, tmp_path: Path) -> None:
    from prognos.data.synthetic import synthetic_fleet
    from tests.helpers import cmapss_text

    data = tmp_path / "fleet.txt"
    data.write_text(cmapss_text(synthetic_fleet(30, seed=3)))
    env = {**os.environ, "PROGNOS_CMAPSS_DIR": "/nonexistent"}
    proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "predict", "--bundle", str(tiny_bundle),
                             "--input", str(data), "--format", "csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: the first write meets a closed pipe
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err == "", err


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=_ids(COMMANDS))
def test_help_shows_flags_without_a_value_type(prognos, path, command) -> None:  # type: ignore[no-untyped-def]
    r = prognos(*path, "--help")
    assert r.code == 0 and "--help" in r.out
    assert "<bool>" not in r.out  # typer 0.29 prints flags as if they took a value
    flags = [p.opts[0] for p in command.params if getattr(p, "is_flag", False)]
    for line in r.out.splitlines():
        for flag in flags:
            if f" {flag} " in line:
                assert "<" not in line.split(flag, 1)[1][:20], line


def test_every_group_says_what_it_does(prognos) -> None:  # type: ignore[no-untyped-def]
    r = prognos("data", "--help")
    assert "Download NASA's C-MAPSS" in r.out and "fetch" in r.out
