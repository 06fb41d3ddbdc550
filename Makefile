# Two commands on a fresh machine (Python >= 3.11 with venv):
#   make demo   installs orchestrator and runs the support-triage graph on the bundled CPU models
#   make test   installs orchestrator with its dev tools and optional backends, runs the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MESSAGE ?= I was charged twice this month and nobody answers my emails. This is unacceptable!

.PHONY: demo test install install-dev lint bench schema clean pack docs dist chaos fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .

# The tests cover the optional backends and the documentation site too: `docs` (mkdocs),
# `train` (torch 2.13.0 for encoder fine-tuning) and `llm` (llama-cpp-python, which compiles
# from source once, about 5-10 minutes on 2 cores; pip keeps the built wheel in its cache and
# reuses it on any machine).
# llama.cpp is built for AVX2 rather than for the build machine (-march=native): a native
# build on a CPU with AMX uses llama.cpp's AMX kernels, which segfault on some of them, and a
# cached native wheel would not run on an older CPU.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
install-dev: $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev,docs,train,llm,postgres]'

demo: install
	$(BIN)/orchestrator run support_triage --input "$(MESSAGE)"

test: install-dev
	$(BIN)/python -m pytest

# mypy --strict on the installed layout (the folders map to orchestrator.* only once installed).
lint: install-dev
	$(BIN)/ruff check .
	rm -rf build/typecheck build/lib  # build/lib keeps modules that were since removed
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --target build/typecheck .
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --strict -p orchestrator

# The documentation site (docs/, mkdocs-material) into site/. --strict fails on a broken link
# or a missing reference. The API reference reads docstrings from the installed layout (the
# folders map to orchestrator.* only once installed), as `lint` does.
docs: install
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[docs]'
	rm -rf build/docs-src
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --target build/docs-src .
	$(BIN)/mkdocs build --strict

# The sdist and the wheel into dist/, checked with twine.
dist: install-dev
	rm -rf dist
	$(BIN)/python -m build
	$(BIN)/twine check --strict dist/*

# Benchmarks (not part of the tests): each prints a table and writes JSON and a PNG plot
# to benchmarks/results/; see benchmarks/README.md. The PNGs need the `eval` extra.
BENCH_SCRIPTS := overhead specialists end_to_end mcp_transport triage_latency workers tracing sync_pool
bench: install
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[eval,postgres,otel]'
	@for script in $(BENCH_SCRIPTS); do \
		echo "== benchmarks/$$script.py"; \
		$(BIN)/python benchmarks/$$script.py || exit 1; \
	done

# The chaos suite at full size (CI runs it small): 100 SIGKILLs, each of a 100-run batch,
# then the batch resumed; the figures go to benchmarks/results/chaos.json (RELIABILITY.md).
CHAOS_TRIALS ?= 100
CHAOS_RUNS ?= 100
chaos: install-dev
	mkdir -p benchmarks/results
	ORCHESTRATOR_CHAOS_TRIALS=$(CHAOS_TRIALS) ORCHESTRATOR_CHAOS_RUNS=$(CHAOS_RUNS) \
		ORCHESTRATOR_CHAOS_REPORT=benchmarks/results/chaos.json $(BIN)/python -m pytest -m chaos

# Property-based fuzzing, deeper than in `make test` (a few dozen cases per property there):
# graph files, expressions, CLI arguments and both MCP transports' frames, FUZZ_EXAMPLES cases
# per property; the MCP suites append frames sent and server RSS to build/fuzz_report.jsonl.
# RELIABILITY.md has the latest figures.
FUZZ_EXAMPLES ?= 10000
fuzz: install-dev
	mkdir -p build && rm -f build/fuzz_report.jsonl
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ORCHESTRATOR_FUZZ_REPORT=build/fuzz_report.jsonl \
		$(BIN)/python -m pytest -m fuzz --hypothesis-profile fuzz -q -p no:cacheprovider \
		--hypothesis-show-statistics
	cat build/fuzz_report.jsonl

# Regenerate the JSON Schema that editors use for graph files.
schema: install
	$(BIN)/orchestrator graph schema > graphs/graph.schema.json

clean:
	rm -rf $(VENV) .orchestrator build dist site *.egg-info

# Train and evaluate the full specialist pack (intent: CLINC150, Banking77; sentiment: SST-2,
# TweetEval) from a data directory; artifacts go to .orchestrator/specialists/.
DATA ?= ../shared/data
pack: install
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[eval]'
	$(BIN)/orchestrator specialists build-pack --data-dir $(DATA) --plots benchmarks/plots
