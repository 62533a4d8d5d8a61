# cosinter — set-up and checks. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_CASE := cases/demo_ncm104_llto.toml

.PHONY: install install-mpi test-mpi demo test test-slow lint docs bench validation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The PETSc back end (cosinter run --solver petsc): Debian's petsc4py, mpi4py and
# Open MPI, a venv that sees them (system site packages) and Debian's numpy/scipy
# (petsc4py is built against them: a pip numpy must not shadow them). Needs root
# (apt-get); ~45 s with the .debs cached, ~80 MB to download otherwise.
MPI_VENV := .venv-mpi
MPI_BIN := $(MPI_VENV)/bin
MPI_STAMP := $(MPI_VENV)/.installed
MPI_APT := python3-petsc4py python3-mpi4py openmpi-bin python3-numpy python3-scipy \
	python3-venv python3-pip
SYS_PYTHON := /usr/bin/python3

$(MPI_STAMP): pyproject.toml
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(MPI_APT)
	$(SYS_PYTHON) -m venv --system-site-packages $(MPI_VENV)
	# pin pip to Debian's numpy and scipy (pyproject asks for newer: --no-deps below)
	$(SYS_PYTHON) -c 'import numpy, scipy; print(f"numpy=={numpy.__version__}\nscipy=={scipy.__version__}")' \
		> $(MPI_VENV)/constraints.txt
	$(SYS_PYTHON) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
		print("\n".join(d for d in p["dependencies"] + p["optional-dependencies"]["dev"] \
		if not d.startswith(("numpy", "scipy"))))' > $(MPI_VENV)/requirements.txt
	# Debian's petsc4py is found through /usr/lib/petsc (petsc-dev) or PETSC_DIR; point
	# the venv at the runtime package directly instead of installing petsc-dev
	ls -d /usr/lib/petscdir/petsc3.*/*-real/lib/python3/dist-packages | tail -n 1 \
		> "$$($(MPI_BIN)/python -c 'import site; print(site.getsitepackages()[0])')/debian-petsc4py.pth"
	$(MPI_BIN)/python -m pip install --quiet -c $(MPI_VENV)/constraints.txt \
		-r $(MPI_VENV)/requirements.txt
	$(MPI_BIN)/python -m pip install --quiet --no-deps -e .
	$(MPI_BIN)/python -c 'import numpy, petsc4py, mpi4py, cosinter; \
		assert numpy.__file__.startswith("/usr/lib/python3/dist-packages/"), numpy.__file__'
	touch $(MPI_STAMP)

install-mpi: $(MPI_STAMP)

test-mpi: $(MPI_STAMP)
	$(MPI_BIN)/python -m pytest -q tests/solver/test_mpi.py

demo: $(STAMP)
	$(BIN)/cosinter run $(DEMO_CASE) -o results/demo_ncm104_llto

lint: $(STAMP)
	$(BIN)/ruff check cosinter tests bench docs/conf.py docs/validation/build.py
	$(BIN)/ruff format --check cosinter tests bench docs/conf.py docs/validation/build.py
	$(BIN)/mypy

# the MPI tests (two ranks against a serial run) also run where .venv-mpi exists
# (make install-mpi; the CI script makes it)
test: lint
	$(BIN)/python -m pytest -m "not slow" -q
	@if [ -f $(MPI_STAMP) ]; then \
		echo "$(MPI_BIN)/python -m pytest -q tests/solver/test_mpi.py"; \
		$(MPI_BIN)/python -m pytest -q tests/solver/test_mpi.py; \
	else echo "(no $(MPI_VENV): the MPI tests were skipped; make install-mpi)"; fi

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
	$(BIN)/python bench/cross_stencil.py $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) $(MPI_VENV) docs/_build results .pytest_cache .mypy_cache .ruff_cache
