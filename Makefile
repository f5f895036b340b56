# Two commands on a fresh machine:  `make demo`  and  `make test`.
# torch is installed first, pinned, so pip never resolves a multi-GB CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install demo test lint bench clean

$(BIN)/prognos: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,dev,postgres,aws,mlflow]'
	touch $(BIN)/prognos

install: $(BIN)/prognos

demo: install
	$(BIN)/prognos demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) build *.egg-info
