# Ozwald: the single entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
GEN := gen/python
PROTOS := $(shell find proto -name '*.proto' | sort)
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

.PHONY: install
install: $(VENV)/.installed ## create .venv and install Ozwald with its dev tools

.PHONY: proto
proto: $(VENV)/.installed ## regenerate Python code and .pyi stubs from proto/
	rm -rf $(GEN)/ozwald
	mkdir -p $(GEN)
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -Iproto \
		--python_out=$(GEN) --mypy_out=$(GEN) \
		--grpc_python_out=$(GEN) --mypy_grpc_out=$(GEN) $(PROTOS)
	find $(GEN)/ozwald -type d -exec touch {}/__init__.py \;

.PHONY: proto-check
proto-check: $(VENV)/.installed ## fail when buf lint fails, a released field broke, or generated code is stale
	$(BIN)/buf lint
	bash scripts/proto-breaking.sh
	@fresh=$$(mktemp -d) && trap 'rm -rf "$$fresh"' EXIT && \
		$(MAKE) --no-print-directory proto GEN="$$fresh" >/dev/null && \
		diff -r -x __pycache__ "$$fresh/ozwald" $(GEN)/ozwald \
		|| { echo "generated code under $(GEN) is stale: run 'make proto' and commit it"; exit 1; }

.PHONY: schema
schema: $(VENV)/.installed ## regenerate the ozwald.yml JSON Schema (tests fail when it is stale)
	$(BIN)/ozwald config schema > ozwald_sdk/config/ozwald.schema.json

.PHONY: tiny-image
tiny-image: docker ## build the local test image ozwald/tiny:local (no registry needed)
	bash scripts/build-tiny-image.sh

.PHONY: lint
lint: $(VENV)/.installed ## ruff format check and lint, buf lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/buf lint

.PHONY: format
format: $(VENV)/.installed ## apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: typecheck
typecheck: $(VENV)/.installed ## mypy --strict on hand-written code
	$(BIN)/mypy

.PHONY: docker
docker: ## make sure a Docker Engine answers (installs and starts Debian's docker.io when absent)
	@bash scripts/ensure-docker.sh

.PHONY: test
test: $(VENV)/.installed docker ## the whole suite: proto freshness, lint, types, unit, integration
	$(MAKE) --no-print-directory proto-check lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(VENV)/.installed ## unit tests only (no Docker needed)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

BENCH ?= prov_overhead prov_fleet plan_latency place_throughput pack_quality fail_converge heartbeat_capacity
BENCH_ARGS ?=

.PHONY: bench
bench: $(VENV)/.installed docker ## run the benchmarks beside their peers (BENCH="plan_latency" picks one, BENCH_ARGS="--runs 7")
	@set -e; for name in $(BENCH); do echo "== $$name"; $(PY) bench/$$name.py $(BENCH_ARGS); done

.PHONY: gpu-check
gpu-check: ## on an NVIDIA machine: print the real host profile and run the gpu-marked tests
	bash scripts/gpu-check.sh

TESTBED ?= up

.PHONY: fleet-testbed
fleet-testbed: $(VENV)/.installed docker tiny-image ## as root: orchestrator + 3 real agents in network namespaces (TESTBED=down|status|partition h2...; docs/orchestrator.md)
	$(PY) -m ozwald_testbed $(TESTBED)

.PHONY: vllm-cpu-image
vllm-cpu-image: docker ## build ozwald/vllm-cpu:local offline (vLLM on the CPU; skipped when up to date)
	bash scripts/build-vllm-cpu-image.sh

.PHONY: quickstart
quickstart: ## from nothing to a real vLLM answering: install, image, model, agent, embeddings request
	@export OZWALD_QUICKSTART_T0=$$(date +%s%N) && \
		$(MAKE) --no-print-directory install docker && bash scripts/quickstart.sh
