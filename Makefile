# descent: the README's commands. Everything runs inside .venv, created when missing: on a fresh
# clone `make test` alone installs all the suite needs (pyproject.toml's `test` extra is the one
# list, the pinned PyTorch oracle included) and `make lint` all the lint needs (`lint` extra).
# A stamp file per extra re-installs when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test bench lint clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-core: $(VENV)/bin/activate pyproject.toml
	$(PIP) install --quiet -e '.[fast,plot]'
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/activate pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-lint: $(VENV)/bin/activate pyproject.toml
	$(PIP) install --quiet -e '.[lint]'
	touch $@

# The main job: the best CPU recipe, `--preset speedrun-cpu` (Muon, RoPE, QK-norm, ReLU^2, a
# logit soft-cap, zero-initialised projections; docs/speedrun.md), on the Python standard
# library's own source (no download): 750 steps, about as long as nanoGPT's 2000-iteration
# baby-GPT recipe; ends with a sample, the files written and OUT/report.html. DEMO_ITERS=N
# shortens or lengthens it (the schedule follows).
demo: $(VENV)/.installed-core
	$(VENV)/bin/descent train --preset speedrun-cpu --data python --max-iters $${DEMO_ITERS:-1800} \
		--out $${DEMO_OUT:-out/demo} --prompt "def " --report

# The suite runs in two pytest-xdist worker processes (conftest.py gives each worker its share of
# the BLAS/OpenMP threads): on two cores about 500 s instead of 730-780 s in one process.
# `make test XDIST_ARGS=` runs it in one process; PYTEST_ARGS adds pytest arguments to either.
# PYTHONDONTWRITEBYTECODE is unset for the suite: its ~100 subprocesses (CLI, MPI, bootstrap,
# compat fork servers) would each compile descent from source, ~0.4 s of CPU apiece.
XDIST_ARGS ?= -n 2 --dist worksteal
test: $(VENV)/.installed-test
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -q $(XDIST_ARGS) $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	@# Every benchmark script (files starting with _ are shared helpers). gpu.py needs CUDA.
	@for b in benchmarks/[!_]*.py; do \
		if [ $$b = benchmarks/gpu.py ] && ! $(PY) -c "import descent.cuda as c, sys; sys.exit(not c.is_available())"; then \
			echo "== $$b: skipped (no CUDA GPU; run scripts/gpu_check.sh on a GPU machine)"; continue; fi; \
		echo "== $$b"; env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) $$b || exit 1; \
	done

# ruff (style and bugs) and import-linter (the core's layers: pyproject.toml [tool.importlinter]).
lint: $(VENV)/.installed-lint
	$(PY) -m ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
