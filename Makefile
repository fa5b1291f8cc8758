# The two commands of the README:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: setup setup-dev system-deps run evaluate test lint typecheck unit clean image stack stack-down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,fetch]'
	touch $(STAMP)

# The test tools (pytest, ruff, mypy, Playwright, the deployment checkers) on top.
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[train,fetch,dev]'
	touch $(DEV_STAMP)

setup: $(STAMP)  ## create .venv and install otaku (service, training, data fetching)

setup-dev: $(DEV_STAMP)  ## ... and the test tools

# The main job: the API and the web UI on the champion model; trains first when there is none
# (your data in OTAKU_DATA_DIR, else the demo dataset with quick models).
run: setup
	$(BIN)/otaku up

# Evaluate every strategy and baseline (your data, else the demo) into reports/.
evaluate: setup
	@if [ -n "$$OTAKU_DATA_DIR" ]; then \
		$(BIN)/otaku evaluate --data "$$OTAKU_DATA_DIR"; \
	else \
		$(BIN)/otaku evaluate --demo --quick --out reports/demo; \
	fi

lint: setup-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup-dev
	$(BIN)/mypy

# The images with podman (serve, jobs, mlflow, and the stack's postgres and prometheus), from a
# base made here with debootstrap when no registry answers; layers are cached.
image: system-deps
	bash scripts/images.sh

# The stack of deploy/podman/compose.yml from those images (OTAKU_API_KEY must be set).
stack: image setup-dev
	CONTAINERS_CONF=$(CURDIR)/deploy/podman/containers.conf $(BIN)/podman-compose -f deploy/podman/compose.yml up -d

stack-down: setup-dev
	CONTAINERS_CONF=$(CURDIR)/deploy/podman/containers.conf $(BIN)/podman-compose -f deploy/podman/compose.yml down -v

# Chromium, Prometheus/promtool, docker-compose and podman for the UI and deployment tests (apt).
system-deps:
	@bash scripts/system-deps.sh

test: setup-dev system-deps lint typecheck  ## lint, type-check and run every test
	OTAKU_PROGRESS=0 $(BIN)/pytest

clean:
	rm -rf $(VENV) .otaku .mypy_cache .ruff_cache .pytest_cache
