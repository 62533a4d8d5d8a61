# cosinter — set-up and checks. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_CASE := cases/demo_ncm104_llto.toml

.PHONY: install demo test test-slow lint docs bench validation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cosinter run $(DEMO_CASE) -o results/demo_ncm104_llto

lint: $(STAMP)
	$(BIN)/ruff check cosinter tests bench docs/conf.py docs/validation/build.py
	$(BIN)/ruff format --check cosinter tests bench docs/conf.py docs/validation/build.py
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

validation: $(STAMP)
	$(BIN)/python docs/validation/build.py $(VALIDATION_FLAGS)
	@echo "report: docs/validation/index.rst (make docs renders it)"

# make bench: every benchmark with --quick (a few minutes, smoke); the full runs that
# docs/performance.md reports: make bench BENCH_FLAGS=  (about 45 minutes, see bench/README.md)
bench: BENCH_FLAGS ?= --quick
bench: $(STAMP)
	$(BIN)/python -c "import pyinstrument" 2>/dev/null || $(BIN)/python -m pip install --quiet pyinstrument==5.1.3
	$(BIN)/python bench/reference_1d.py $(BENCH_FLAGS)
	$(BIN)/python bench/vs_fixed_step.py $(BENCH_FLAGS)
	$(BIN)/python bench/scaling.py $(BENCH_FLAGS)
	$(BIN)/python bench/sweep_throughput.py $(BENCH_FLAGS)
	$(BIN)/python bench/profile_hot_path.py $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) docs/_build results .pytest_cache .mypy_cache .ruff_cache
