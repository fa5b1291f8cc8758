# The two commands of the README:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,fetch,dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install otaku with everything

# The main job: train on your data (OTAKU_DATA_DIR) or the demo dataset, then evaluate.
run: setup
	@if [ -n "$$OTAKU_DATA_DIR" ]; then \
		$(BIN)/otaku train --data "$$OTAKU_DATA_DIR" && $(BIN)/otaku evaluate --data "$$OTAKU_DATA_DIR"; \
	else \
		$(BIN)/otaku train --demo --quick && $(BIN)/otaku evaluate --demo --quick --out reports/demo; \
	fi

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: setup
	$(BIN)/mypy

test: setup lint typecheck  ## lint, type-check and run every test
	OTAKU_PROGRESS=0 $(BIN)/pytest

clean:
	rm -rf $(VENV) .otaku .mypy_cache .ruff_cache .pytest_cache
