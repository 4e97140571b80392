# descent: the README's commands. Everything runs inside .venv (created when missing).
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

# The main job: nanoGPT's baby-GPT recipe on the Python standard library's own source (no
# download), about 2.5 minutes on 2 idle cores (~60 ms/iteration); ends with a sample, the files
# written and OUT/report.html. DEMO_ITERS=N shortens or lengthens it.
demo: $(VENV)/.installed-core
	$(VENV)/bin/descent train --preset baby-gpt --data python --max-iters $${DEMO_ITERS:-2000} \
		--out $${DEMO_OUT:-out/demo} --prompt "def " --report

test: $(VENV)/.installed-test
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet torch==2.13.0
	@# Every benchmark script (files starting with _ are shared helpers). gpu.py needs CUDA.
	@for b in benchmarks/[!_]*.py; do \
		if [ $$b = benchmarks/gpu.py ] && ! $(PY) -c "import descent.cuda as c, sys; sys.exit(not c.is_available())"; then \
			echo "== $$b: skipped (no CUDA GPU; run scripts/gpu_check.sh on a GPU machine)"; continue; fi; \
		echo "== $$b"; env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) $$b || exit 1; \
	done

lint: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
