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

# State (model, fleet database, demo key, server log) lives in .prognos/ in this checkout unless
# PROGNOS_DATA_DIR says otherwise; options go through ARGS, e.g. make demo ARGS="--retrain --engines 50".
demo: install
	PROGNOS_DATA_DIR="$${PROGNOS_DATA_DIR:-$(CURDIR)/.prognos}" $(BIN)/prognos demo $(ARGS)

test: install
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) build *.egg-info
