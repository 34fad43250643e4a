# livepose — one-command entry points. Each target does the set-up it needs (scripts/setup.sh:
# Debian cmake + nasm for libjpeg-turbo, and ONNX Runtime 1.31.1 from the PyPI wheel into .ort/).
.PHONY: setup run test bench models lint

CARGO ?= cargo
OUT ?= out

setup:
	@scripts/setup.sh

# Track the bundled demo clip and photos: JSON + annotated PNGs in $(OUT)/.
run: setup
	$(CARGO) run --release -- analyze assets/demo/kenburns_messi.mjpeg tests/fixtures/messi5.jpg --out $(OUT) --annotate
	@echo "results in $(OUT)/ (kenburns_messi.jsonl, messi5.json, annotated PNGs)"

# The whole test suite: unit tests, golden tests against MediaPipe, lints.
test: setup
	$(CARGO) test --all-targets
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Speed: livepose's pipeline and, in the same run, the official MediaPipe Python pipeline.
bench: setup
	scripts/bench.sh

# Rebuild the ONNX models from the npm packages (needs npm and ~3 min; see models/README.md).
models:
	models/make_models.sh --out models
