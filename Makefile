# Two commands on a fresh machine:  `make demo`  and  `make test`.
# torch is installed first, pinned, so pip never resolves a multi-GB CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# 0: do not check or install Debian packages (tests that need a missing one skip, with the reason).
SYSTEM_DEPS ?= 1
# The container checks (deploy/ci.sh: image build, 2-minute smoke test under 600 MB, stack test) run
# in `make test` when CI=true or PROGNOS_CONTAINER_TESTS=1; PROGNOS_CONTAINER_TESTS=0 turns them off.
CONTAINER_TESTS := $(if $(filter 0,$(PROGNOS_CONTAINER_TESTS)),,$(if $(filter true,$(CI))$(filter 1,$(PROGNOS_CONTAINER_TESTS)),1,))

.PHONY: install demo test lint bench clean demo-deps test-deps
# Prerequisites run in the order written: the Debian packages before the venv that needs python3-venv.
.NOTPARALLEL:

$(BIN)/prognos: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,dev,postgres,aws,mlflow]'
	touch $(BIN)/prognos

install: $(BIN)/prognos

demo-deps:
	@$(if $(filter 0,$(SYSTEM_DEPS)),true,scripts/system-deps.sh demo)

test-deps:
	@$(if $(filter 0,$(SYSTEM_DEPS)),echo "SYSTEM_DEPS=0: Debian packages not checked; tests needing a missing one skip",scripts/system-deps.sh test $(if $(CONTAINER_TESTS),container))

# State (model, fleet database, demo key, server log) lives in .prognos/ in this checkout: the CLI run
# anywhere inside the checkout finds it too (see README). Options go through ARGS, e.g.
# make demo ARGS="--retrain --engines 50".
demo: demo-deps install
	PROGNOS_DATA_DIR="$${PROGNOS_DATA_DIR:-$(CURDIR)/.prognos}" $(BIN)/prognos demo $(ARGS)

# Container checks before pytest, so that pytest's summary is the last thing printed.
test: test-deps install
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/mypy
	$(if $(CONTAINER_TESTS),PROGNOS_CONTAINER_TESTS=1 PYTHON=$(BIN)/python bash deploy/ci.sh,@echo "container checks (deploy/ci.sh) not run: CI=true or PROGNOS_CONTAINER_TESTS=1 runs them")
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) build *.egg-info
