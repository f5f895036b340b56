"""`prognos models …` end to end through the console entry point (exit codes, stdout, stderr)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from prognos import cli

MakeBundle = Callable[[str], Path]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def prognos(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            tmp_path: Path) -> Callable[..., Run]:
    monkeypatch.setenv("PROGNOS_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PROGNOS_REGISTRY_DIR", raising=False)

    def run(*args: str) -> Run:
        monkeypatch.setattr("sys.argv", ["prognos", *args])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def _listed(run: Run) -> list[tuple[int, str, list[str]]]:
    assert run.code == 0, run.err
    return [(v["version"], v["status"], v["aliases"]) for v in json.loads(run.out)]


def test_register_approve_promote_rollback(prognos: Callable[..., Run], make_bundle: MakeBundle,
                                           tmp_path: Path) -> None:
    assert _listed(prognos("models", "list", "--format", "json")) == []
    r = prognos("models", "register", str(make_bundle("a")), "--by", "alice")
    assert r.code == 0 and "version 1" in r.out
    assert (tmp_path / "state" / "registry" / "index.json").is_file()  # default location: data dir
    prognos("models", "register", str(make_bundle("b")))

    refused = prognos("models", "promote", "1")
    assert refused.code != 0
    assert refused.err.startswith("error: version 1 is pending approval") and "Traceback" not in refused.err
    assert _listed(prognos("models", "list", "--format", "json")) == [(1, "pending", []), (2, "pending", ["candidate"])]

    assert prognos("models", "approve", "1", "--by", "bob").code == 0
    assert prognos("models", "promote", "1").code == 0
    assert prognos("models", "approve", "v2").code == 0
    assert "1 -> 2" in prognos("models", "promote", "candidate").out
    assert _listed(prognos("models", "list", "--format", "json")) == [(1, "approved", []),
                                                                      (2, "approved", ["production"])]
    back = prognos("models", "rollback")
    assert back.code == 0 and "2 -> 1" in back.out
    shown = json.loads(prognos("models", "show", "production").out)
    assert (shown["version"], shown["approved_by"], shown["aliases"]) == (1, "bob", ["production"])
    assert [e["action"] for e in shown["events"]] == ["register", "approve", "promote", "rollback"]

    assert prognos("models", "archive", "2").code == 0
    table = prognos("models", "list")
    assert table.code == 0 and "archived" in table.out and "production" in table.out


def test_errors_are_one_line_with_an_exit_code(prognos: Callable[..., Run], make_bundle: MakeBundle,
                                               tmp_path: Path) -> None:
    missing = prognos("models", "show", "9")
    assert missing.code == 5 and missing.err.strip() == (
        f"error: no model version '9' in the registry at {tmp_path / 'state' / 'registry'} (versions: none)")
    assert prognos("models", "rollback").code != 0
    bad = prognos("models", "register", str(tmp_path / "nowhere"))
    assert bad.code == 4 and "no such bundle directory" in bad.err
    fmt = prognos("models", "list", "--format", "yaml")
    assert fmt.code != 0 and "--format must be table or json" in fmt.err
    url = prognos("models", "list", "--registry", "ftp://host/x")
    assert url.code == 2 and "s3://bucket/prefix" in url.err


def test_registry_option_and_env_select_the_location(prognos: Callable[..., Run], make_bundle: MakeBundle,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "team-registry"
    assert prognos("models", "register", str(make_bundle("a")), "--registry", str(elsewhere)).code == 0
    assert _listed(prognos("models", "list", "--format", "json")) == []
    monkeypatch.setenv("PROGNOS_REGISTRY_DIR", str(elsewhere))
    assert _listed(prognos("models", "list", "--format", "json")) == [(1, "pending", ["candidate"])]


def test_an_unreachable_s3_registry_is_one_line(prognos: Callable[..., Run]) -> None:
    from moto import mock_aws

    with mock_aws():
        r = prognos("models", "list", "--registry", "s3://no-such-bucket-here/models")
    assert r.code == 1 and "Traceback" not in r.err
    assert r.err.startswith("error: s3://no-such-bucket-here/models/index.json: NoSuchBucket")
