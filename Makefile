# segkit — behavioral segmentation toolkit. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.segkit-installed
UV_VERSION := 0.13.8
PARAMS ?= default
export PYTHONHASHSEED := 0
export UV_COMPILE_BYTECODE := 1
export MPLBACKEND := Agg

.PHONY: help setup report test test-unit test-notebooks refresh bench lab lock clean

help: ## Show this list of targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; segkit needs Python 3.11 (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (segkit)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv from the pinned lock and install segkit (idempotent)

report: $(STAMP) ## Build all HTML reports for PARAMS (default: parameters/default.yaml) into reports/PARAMS/
	$(BIN)/python -m segkit report --params parameters/$(PARAMS).yaml

test: $(STAMP) ## Run unit tests, the docstring examples and notebook regression tests (nbval)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --doctest-modules -p no:cacheprovider segkit
	$(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks

test-unit: $(STAMP) ## Run only the unit tests and the docstring examples
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --doctest-modules -p no:cacheprovider segkit

refresh: $(STAMP) ## Re-execute the committed notebooks in place (when a change of numbers is intended)
	$(BIN)/python -m segkit refresh

bench: $(STAMP) ## Run benchmarks and write reports/benchmarks/results.{json,md}
	$(BIN)/python -m benchmarks

lab: $(STAMP) ## Open JupyterLab on notebooks/
	$(BIN)/jupyter lab notebooks/

lock: ## Re-pin requirements.lock from requirements.in (needs network)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header --no-annotate -o requirements.lock
	sed -i '1i # Pinned environment for segkit (Python 3.11). Regenerate with `make lock` after editing requirements.in.' requirements.lock

clean: ## Remove generated reports, run artifacts and caches (keeps .venv)
	rm -rf reports/*/ runs/ .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
