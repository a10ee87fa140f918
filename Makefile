# vram-orchestrator: `make help` lists the targets.
# One cargo target dir for the extension (target/) and one for the worker workspace
# (target/worker), shared by the package build, clippy and the tests: one release build.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
WORKER := --manifest-path crates/worker/Cargo.toml --target-dir target/worker
# The ppocr-v4 model folder (the Rust tests check parity with RapidOCR 1.4.4 on it), ONNX
# Runtime's library and the ppocr-v6-tiny folder (its fallback rec is tested in Rust),
# resolved the way the package resolves them.
RESOLVE := $(PYTHON) -c "from vram_orchestrator import resources as r; print(r.model_dir(None, 'ppocr-v4')); print(r.ort_dylib(None)); print(r.model_dir(None, 'ppocr-v6-tiny'))"

.PHONY: help install install-test run format lint test test-rust test-python bench

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

install: ## Build and install the package with ONNX Runtime (CPU)
	$(PYTHON) -m pip install --disable-pip-version-check -q '.[cpu]'

install-test: ## Build and install the package with the test tools
	$(PYTHON) -m pip install --disable-pip-version-check -q '.[test]'
	@# Their declared dependencies pull in torch; the tests need only their Python modules.
	$(PYTHON) -m pip install --disable-pip-version-check -q --no-deps docling-jobkit==3.9.1 docling-serve==1.38.2
	@# Everything else they require comes from our extras: fail here, not in a test.
	$(PYTHON) scripts/check-requirements.py docling-jobkit docling-serve
	@# A Redis server for the RQ tests, under build/redis.
	bash scripts/get-redis.sh >/dev/null

run: install ## Install, then OCR the sample page (the main job)
	vram-orchestrator ocr tests/data/ocrset/13_page_paragraph.png

format: ## Format Rust and Python code
	cargo fmt --all
	cargo fmt --manifest-path crates/worker/Cargo.toml --all
	$(PYTHON) -m ruff format python tests bench examples scripts

lint: ## cargo fmt --check, clippy -D warnings (both workspaces), ruff, mypy --strict, stubtest
	cargo fmt --all --check
	cargo fmt --manifest-path crates/worker/Cargo.toml --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	cargo clippy --release $(WORKER) --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	@# The package, strict (settings in pyproject.toml).
	$(PYTHON) -m mypy
	@# The work tree's _native.pyi against the installed extension (install first).
	MYPYPATH=python $(PYTHON) -m mypy.stubtest vram_orchestrator._native

test-rust: ## Rust unit and integration tests (models needed: installs first)
	@# Both runs include bounded property tests of bad input (frames: crates/protocol/tests,
	@# images: crates/ocr/src/decode/fuzz.rs), no models needed; PROPTEST_CASES=N runs longer.
	cargo test --release -p vram-orch-protocol -p vram-orch-supervisor
	paths=($$($(RESOLVE))) && \
	  ORT_DISABLE_TELEMETRY=1 VRAM_ORCH_MODEL_DIR=$${paths[0]} VRAM_ORCH_ORT_DYLIB=$${paths[1]} \
	  VRAM_ORCH_TINY_MODEL_DIR=$${paths[2]} cargo test --release $(WORKER) --workspace

test-python: ## pytest end to end through the installed package
	$(PYTHON) -m pytest -q

test: install-test lint test-rust test-python ## Install, lint, and run every test

bench: ## Benchmarks (see bench/README.md)
	$(PYTHON) bench/ocr_vs_rapidocr.py
