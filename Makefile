# flowless: `make serve` runs the API locally, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 9380
DATA_DIR ?= data
# ragflow-sdk 0.23.1 needs Python >= 3.12: a small venv of its own for its test (skipped without one).
SDK_PYTHON ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python) $(shell command -v python3.12 2>/dev/null))
SDK_VENV := .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup serve test test-aws lint typecheck pytest bench bench-quality synth lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The lock holds the whole resolved set; --no-deps installs exactly it (some pins must not pull their deps).
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(SDK_STAMP): requirements-sdk.lock
	@if [ -n "$(SDK_PYTHON)" ] && [ -x "$(SDK_PYTHON)" ]; then \
		(test -x $(SDK_VENV)/bin/python || $(SDK_PYTHON) -m venv $(SDK_VENV)) && \
		$(SDK_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-sdk.lock && touch $(SDK_STAMP); \
	else \
		echo "No Python 3.12 found (SDK_PYTHON=...): the ragflow-sdk 0.23.1 test will be skipped"; \
	fi

setup: $(STAMP) $(SDK_STAMP)

# The default tenant's chat model: FLOWLESS_CHAT_MODEL=NAME@FACTORY (OPENAI_BASE_URL / OPENAI_API_KEY for its
# endpoint and key), e.g. `FLOWLESS_CHAT_MODEL=llama3.2@Ollama make serve`.
serve: setup
	$(BIN)/flowless serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy shared functions infra_cdk benchmarks

# pytest exits 5 when it collects nothing; that is not a failure of the code under test.
pytest: setup
	$(BIN)/pytest -q || test $$? -eq 5

test: lint typecheck pytest

# Only the API suite's runs on the AWS adapters (make test runs them beside everything else).
test-aws: setup
	$(BIN)/pytest -q tests/integration -k "aws"

bench: setup
	$(BIN)/python benchmarks/bench_cold_start.py
	$(BIN)/python benchmarks/bench_list_datasets.py

# Retrieval quality on every release: SciFact and the two held-out collections whose questions are paragraphs
# (each ingests its collection into a fresh folder: ~10 minutes on 2 cores).
bench-quality: setup
	$(BIN)/python benchmarks/bench_scifact.py --no-sweep
	$(BIN)/python benchmarks/bench_scifact.py --no-sweep --collection wiki-sections
	$(BIN)/python benchmarks/bench_scifact.py --no-sweep --collection lee

synth: setup
	$(BIN)/python -m infra_cdk.app

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) $(SDK_VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
