# Everyday targets. `make report` and `make test` bootstrap .venv on a fresh machine.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.segwork-installed
ARGS ?=
# The shared UCI data beside the project, when present (CI sets it explicitly).
export SEGWORK_UCI_DIR ?= $(wildcard $(abspath ../shared/data/online_retail))
export MPLBACKEND := Agg

.PHONY: install report test lint format lab bench notebooks clean help

help:  ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name segwork --display-name "Python (segwork)"
	@touch $@

install: $(STAMP)  ## create .venv, install segwork with dev extras, register the 'segwork' kernel

report: $(STAMP)  ## run segwork on the synthetic default data (pass more with ARGS="--lang en")
	$(BIN)/segwork run $(ARGS)

test: $(STAMP)  ## lint, then the whole test suite (UCI tests run when SEGWORK_UCI_DIR is set)
	$(BIN)/ruff check lib tests bench
	$(BIN)/ruff format --check lib tests bench
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval lib/segwork/notebooks/ --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg

lint: $(STAMP)  ## ruff check
	$(BIN)/ruff check lib tests bench

format: $(STAMP)  ## ruff format + autofix
	$(BIN)/ruff format lib tests bench
	$(BIN)/ruff check --fix lib tests bench

lab: $(STAMP)  ## JupyterLab on the segwork kernel
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)  ## benchmarks (print figures; not part of the tests)
	$(BIN)/python bench/rfm_table.py
	$(BIN)/python bench/cluster_stage.py

notebooks: $(STAMP)  ## re-execute the report notebooks in place (their outputs are what nbval compares)
	cd lib/segwork/notebooks && $(abspath $(BIN))/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.kernel_name=segwork 0*.ipynb

clean:  ## remove generated reports, caches and the synthetic data (keeps .venv)
	rm -rf reports/[0-9]* reports/index.html data/synthetic .pytest_cache .ruff_cache
