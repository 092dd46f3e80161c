# hf-recsys developer tasks. `make demo` and `make test` are the two commands in the README.
# TORCH_SPEC picks the torch build: the CPU wheel by default (an unpinned torch pulls a multi-GB
# CUDA build); on a GPU machine use e.g. `make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
# Offline copies of MovieLens (see ../shared/data/README.md); override for your own folder.
HF_RECSYS_DATA_DIR ?= $(abspath ../shared/data)
export HF_RECSYS_DATA_DIR

.PHONY: setup test lint format demo bench bench-all bench-data bench-inference bench-scale app clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The main job: ML-1M -> train -> evaluate against baselines -> recommend -> runs/demo.
demo: setup
	$(PY) scripts/demo.py --output_dir runs/demo

# ML-1M benchmark (popularity, original notebook recipe, default model); appends to benchmarks/results/ml-1m.json.
bench: setup
	$(PY) scripts/benchmark.py --suite default

# Ablations over loss types and user conditioning (hours; not part of CI).
bench-all: setup
	$(PY) scripts/benchmark.py --suite all

bench-data: setup
	$(PY) benchmarks/bench_data.py

bench-inference: setup
	$(PY) benchmarks/bench_inference.py

bench-scale: setup
	$(PY) benchmarks/bench_scale.py

app: setup
	$(VENV)/bin/pip install -q -e ".[demo]"
	$(PY) scripts/app.py --model runs/demo --port 7860

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
