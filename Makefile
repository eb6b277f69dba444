# flowless: `make serve` runs the API locally, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 9380
DATA_DIR ?= data
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup serve test lint typecheck pytest bench synth lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The lock holds the whole resolved set; --no-deps installs exactly it (some pins must not pull their deps).
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

serve: setup
	$(BIN)/flowless serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy shared functions infra_cdk

# pytest exits 5 when it collects nothing; that is not a failure of the code under test.
pytest: setup
	$(BIN)/pytest -q || test $$? -eq 5

test: lint typecheck pytest

bench: setup
	$(BIN)/python benchmarks/bench_cold_start.py
	$(BIN)/python benchmarks/bench_list_datasets.py

synth: setup
	$(BIN)/python -m infra_cdk.app

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
