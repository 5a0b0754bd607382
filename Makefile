# Two user-facing commands: `make test` and `make demo`. Each creates/refreshes .venv itself
# from the pinned requirements, so a fresh clone on a fresh machine needs only python3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Keep CPU thread counts sane on small machines (2 cores in CI).
export OMP_NUM_THREADS ?= 2
export PYTHONDONTWRITEBYTECODE = 1

TRITON_STAMP := $(VENV)/.triton-stamp
# Tests that need Triton's CPU interpreter (about 1 GB) run in their own target.
TRITON_TESTS := test/test_triton_deform.py test/test_bench_gpu.py

.PHONY: venv test lint pytest demo bench clean triton test-triton

$(STAMP): requirements.txt requirements-dev.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .

pytest: venv
	$(BIN)/pytest -q $(addprefix --ignore=,$(TRITON_TESTS))

$(TRITON_STAMP): $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q triton==3.9.0
	touch $(TRITON_STAMP)

triton: $(TRITON_STAMP)

test-triton: triton
	$(BIN)/pytest -q $(TRITON_TESTS)

test: lint pytest test-triton

demo: venv
	$(BIN)/python -m eggnet_ros.demo

bench: venv
	$(BIN)/python bench/motion.py
	$(BIN)/python bench/model.py
	$(BIN)/python bench/node.py

clean:
	rm -rf $(VENV) build install log *.egg-info .pytest_cache .ruff_cache demo_output
