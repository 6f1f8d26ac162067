# Two entry points on a fresh machine: `make demo` (install + smoke pipeline) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU build that ships on this machine's disk; an open range would pull a
# multi-GB CUDA build. On a GPU machine, install your CUDA torch into .venv first: pip keeps it.
TORCH  ?= torch==2.13.0

.PHONY: demo test test-fast test-kernels lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	env -u RAY_ADDRESS $(BIN)/sluice run configs/smoke.yaml

# Everything but the `slow` reproductions; the Triton kernels run under the interpreter in a
# pytest process of their own (TRITON_INTERPRET is read when kernels are defined).
test: $(BIN)/.installed
	env -u RAY_ADDRESS OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow and not realhead" tests
	env -u RAY_ADDRESS OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m realhead tests
	env -u RAY_ADDRESS TRITON_INTERPRET=1 $(BIN)/python -m pytest tests/kernels tests/models

lint: $(BIN)/.installed
	$(BIN)/ruff check pipeline graphs models kernels workflows tests benchmarks

clean:
	rm -rf $(VENV) runs
