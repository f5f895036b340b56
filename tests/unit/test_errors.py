"""The exception tree drawn in prognos.errors' docstring is the tree in the code: every class
prognos raises on purpose is drawn under its real parent, with the exit code, HTTP status and gRPC
code it really carries."""

from __future__ import annotations

import importlib
import re

import prognos.errors as errors
from prognos.errors import PrognosError

# Modules that define domain errors of their own (drawn in the tree with their module).
_HOMES = ["prognos.features.pipeline", "prognos.lifecycle.registry", "prognos.lifecycle.stores",
          "prognos.fleet.simulate"]
_LINE = re.compile(r"^(?P<indent>[\s│]*)(?:├── |└── )?(?P<name>[A-Z]\w+)\b(?P<rest>.*)$")
_CODES = re.compile(r"CLI (?P<cli>\d+)\s+HTTP (?P<http>\d+)\s+(?P<grpc>[A-Z_]+)")


def _drawn() -> dict[str, tuple[str | None, tuple[int, int, str] | None]]:
    """name -> (parent name, (exit code, http status, grpc code) when the line states them)."""
    doc = errors.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    out: dict[str, tuple[str | None, tuple[int, int, str] | None]] = {}
    stack: list[tuple[int, str]] = []
    last: str | None = None
    for line in block.splitlines():
        m = _LINE.match(line)
        codes = _CODES.search(line)
        if m is None or not m.group("name").endswith("Error"):
            if codes and last:  # the codes continue on the next line
                out[last] = (out[last][0], (int(codes["cli"]), int(codes["http"]), codes["grpc"]))
            continue
        depth = len(m.group("indent")) + (4 if ("├──" in line or "└──" in line) else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        name = m.group("name")
        out[name] = (parent, (int(codes["cli"]), int(codes["http"]), codes["grpc"]) if codes else None)
        stack.append((depth, name))
        last = name
    return out


def _classes() -> dict[str, type[PrognosError]]:
    for module in _HOMES:
        importlib.import_module(module)
    found: dict[str, type[PrognosError]] = {}
    todo: list[type[PrognosError]] = [PrognosError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("prognos."):
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def test_every_domain_error_is_drawn_under_its_parent() -> None:
    drawn, classes = _drawn(), _classes()
    assert set(classes) == set(drawn), (sorted(set(classes) - set(drawn)), sorted(set(drawn) - set(classes)))
    for name, cls in classes.items():
        parent = drawn[name][0]
        if name == "PrognosError":
            assert parent is None
        else:
            assert cls.__bases__[0].__name__ == parent, (name, parent)


def test_the_drawn_codes_are_the_real_ones() -> None:
    drawn, classes = _drawn(), _classes()
    stated = {n: c for n, (_, c) in drawn.items() if c is not None}
    assert len(stated) >= 15
    for name, (cli, http, grpc) in stated.items():
        cls = classes[name]
        assert (cls.exit_code, cls.http_status, cls.grpc_code) == (cli, http, grpc), name


def test_the_base_class_is_never_raised_directly() -> None:
    import pathlib

    root = pathlib.Path(errors.__file__).parent
    raisers = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
               for i, line in enumerate(p.read_text().splitlines(), 1)
               if re.search(r"(raise|return) PrognosError\(", line)]
    assert not raisers, raisers
