# hf-recsys developer tasks. `make demo` and `make test` are the two commands in the README.
# TORCH_SPEC picks the torch build: the CPU wheel by default (an unpinned torch pulls a multi-GB
# CUDA build); on a GPU machine use e.g. `make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
# Local MovieLens files: ../shared/data (see its README.md) when it exists beside this checkout, else nothing,
# and the loader downloads the official GroupLens archive (MD5-checked). Your own HF_RECSYS_DATA_DIR wins.
SHARED_DATA_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../shared/data)
ifeq ($(origin HF_RECSYS_DATA_DIR),undefined)
ifneq ($(wildcard $(SHARED_DATA_DIR)/.),)
HF_RECSYS_DATA_DIR := $(SHARED_DATA_DIR)
endif
endif
ifdef HF_RECSYS_DATA_DIR
export HF_RECSYS_DATA_DIR
endif

.PHONY: setup setup-demo test lint format demo bench bench-all bench-suite bench-toys bench-lastfm bench-data bench-ingest bench-inference bench-export bench-scale bench-step app clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

test: setup-demo
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The main job: ML-1M -> train -> evaluate against baselines -> recommend -> runs/demo.
demo: setup
	$(VENV)/bin/hf-recsys demo --output_dir runs/demo

# ML-1M benchmark (popularity, original notebook recipe, default model); appends to benchmarks/results/ml-1m.json.
bench: setup
	$(VENV)/bin/hf-recsys bench --suite default
	$(PY) benchmarks/render_tables.py

# Ablations over loss types and user conditioning (hours; not part of CI).
bench-all: setup
	$(VENV)/bin/hf-recsys bench --suite all
	$(PY) benchmarks/render_tables.py

# Every dataset x seed (issue 23): popularity and the default recipe, untouched, on ML-100K (5 min), LastFM (10),
# Amazon Toys (20) and ML-1M (30), seeds 42-44 (~3.3 hours); appends to benchmarks/results/<dataset>.json.
bench-suite: setup
	$(VENV)/bin/hf-recsys bench --suite all-datasets --seeds 42,43,44
	$(PY) benchmarks/render_tables.py

# The S3-Rec benchmark files (../shared/data or HF_RECSYS_DATA_DIR): popularity, the default recipe untouched, and
# the recipe reading item ids only; appends to benchmarks/results/<preset>.json (benchmarks/datasets.md).
bench-toys: setup
	$(VENV)/bin/hf-recsys bench --dataset amazon-toys --minutes 20
	$(PY) benchmarks/render_tables.py

bench-lastfm: setup
	$(VENV)/bin/hf-recsys bench --dataset lastfm --minutes 10
	$(PY) benchmarks/render_tables.py

bench-data: setup
	$(PY) benchmarks/bench_data.py

# Preparing a synthetic 1M/3M/10M-row log with string ids through load_interactions (benchmarks/ingest.md; ~1 minute).
bench-ingest: setup
	$(PY) benchmarks/bench_ingest.py

bench-inference: setup
	$(PY) benchmarks/bench_inference.py

# Batch export of every ML-1M user, 100k-1M synthetic users, similarity scans, ONNX vs PyTorch (benchmarks/inference.md).
bench-export: setup
	$(PY) -m pip install -q -e ".[export]"
	$(PY) -m pip install -q faiss-cpu || echo "bench-export: faiss-cpu could not be installed; its rows are skipped"
	$(PY) benchmarks/bench_export.py

bench-scale: setup
	$(PY) benchmarks/bench_scale.py

# Milliseconds per training step, with and without the item softmax and ByteDropout (about 1 minute).
bench-step: setup
	$(PY) benchmarks/bench_step.py

# The interactive demo (docs/app.md): `make app` serves runs/demo on http://127.0.0.1:7860;
# override with e.g. `make app APP_MODEL=user/rec-transformer-ml-1m APP_PORT=7861`.
APP_MODEL ?= runs/demo
APP_PORT ?= 7860

# The demo extra (gradio, playwright for the browser test), installed once per pyproject.toml change.
$(VENV)/.demo-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e ".[demo]"
	touch $@

setup-demo: $(VENV)/.demo-installed

app: setup-demo
	@if [ "$(APP_MODEL)" = runs/demo ] && [ ! -d runs/demo ]; then \
		echo "runs/demo does not exist: train it with 'make demo', or run 'make app APP_MODEL=<run folder or Hub repo id>'" >&2; \
		exit 2; fi
	$(VENV)/bin/hf-recsys app --model $(APP_MODEL) --port $(APP_PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
