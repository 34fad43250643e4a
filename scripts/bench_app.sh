#!/usr/bin/env bash
# The app's speed in software rendering, one command (`make bench-app`): the release build under Xvfb
# with Mesa's lavapipe, on the bundled demo clip, for SECS seconds (default 20). Prints render FPS,
# inference FPS, capture-to-display latency p50/p95 and the CPU each group of threads used. A second run
# with inference idle (the browser source with no client connected) gives the render rate without it.
# Runs, one right after the other: the demo clip in each display mode (smooth, immediate), the demo clip
# with Bevy's own render settings (pipelined rendering, frame latency 2, FIFO: the app before
# 2026-12-07), inference idle, and the demo clip with a tab streaming to the built-in server.
#   SECS     seconds per run (default 20)
#   WINDOW   window size (default 1100x560, as the screenshot test)
#   APP_ARGS more options for the app (e.g. "--max-people 1")
#   PROFILE  1: also sample the demo run with `perf record` (cpu-clock, 499 Hz) and print where the main
#            thread and Mesa's llvmpipe threads spend their time (out/bench-app/perf-*.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-20}"
WINDOW="${WINDOW:-1100x560}"
OUT=out/bench-app
mkdir -p "$OUT"
cargo build --release --bin livepose --bench load
bin="${CARGO_TARGET_DIR:-target}/release/livepose"
PORT="${PORT:-18731}"
for run in demo immediate bevy-defaults idle tab; do
  case "$run" in
    demo) args=(--source demo --no-server --display-mode smooth) ;;
    immediate) args=(--source demo --no-server --display-mode immediate) ;;
    bevy-defaults) args=(--source demo --no-server --display-mode smooth --pipelined-rendering
                         --frame-latency 2 --present-mode fifo) ;;
    idle) args=(--source browser --listen 127.0.0.1:0) ;;
    # The demo clip on screen while a tab (a WebSocket client streaming carphone_640 at 30 frames/s)
    # streams to the built-in server: one service, one engine for both.
    tab) args=(--source demo --listen "127.0.0.1:$PORT")
         cargo bench --bench load -- --client "127.0.0.1:$PORT" "$((SECS + 10))" > "$OUT/tab-client.txt" &
         client=$! ;;
  esac
  profiler=()
  if [ "${PROFILE:-0}" = 1 ] && [ "$run" = demo ]; then
    profiler=(perf record -q -e cpu-clock -F 499 -o "$OUT/perf.data" --)
  fi
  WGPU_BACKEND=vulkan RUST_LOG=warn xvfb-run -a -s "-screen 0 1280x1024x24" "${profiler[@]}" "$bin" "${args[@]}" ${APP_ARGS:-} \
    --window "$WINDOW" --screenshot-after "$SECS" --min-results 0 \
    --screenshot "$OUT/$run.png" --state "$OUT/$run.json"
  if [ "$run" = tab ]; then wait "$client" || true; fi
done
python3 - "$OUT/demo.json" "$OUT/idle.json" "$OUT/tab.json" "$OUT/immediate.json" "$OUT/bevy-defaults.json" <<'PY'
import json, sys
def groups(state):
    cpu = state["cpu_seconds_by_thread"]
    # The inference service's workers (and ONNX Runtime's pool threads, which inherit their name); before
    # the service, inference ran on Bevy's "Async Compute" threads and "livepose-hands".
    inference = sum(v for k, v in cpu.items()
                    if k.startswith("livepose-infer") or k.startswith("Async Compute") or k == "livepose-hands")
    source = sum(v for k, v in cpu.items() if k.startswith("livepose-demo") or k.startswith("livepose-camera"))
    render = sum(cpu.values()) - inference - source
    wall = state["wall_seconds"]
    return inference / wall, render / wall, source / wall, cpu
demo = json.load(open(sys.argv[1])); idle = json.load(open(sys.argv[2]))
def report(name, state):
    inf, ren, src, cpu = groups(state)
    print(f"{name} ({state['source']}, display {state['display_mode']}, {state['render_tuning']}), "
          f"{state['wall_seconds']:.0f} s, window {state['window']}:")
    print(f"  render FPS {state['render_fps']:.1f}, inference FPS {state['inference_fps']:.1f}, capture FPS {state['capture_fps']:.1f}")
    print(f"  capture to present p50 {state['present_latency_ms_p50']:.0f} ms, p95 {state['present_latency_ms_p95']:.0f} ms "
          f"(to the texture write: p50 {state['latency_ms_p50']:.0f}, p95 {state['latency_ms_p95']:.0f}); "
          f"inference total p50 {state['inference_total_ms_p50']:.1f} ms, p95 {state['inference_total_ms_p95']:.1f} ms")
    print(f"  frames published {state['frames_published']}, dropped in the slot {state['frames_dropped']}, "
          f"results {state['results_received']}; window frames presented {state['frames_presented']}, "
          f"video frames presented {state['video_frames_presented']}; 3D view rendered in "
          f"{state['view3d_renders']} of {state['view3d_updates']} updates")
    if state.get("service"):
        s = state["service"]
        print(f"  inference service: {s['engines_loaded']} engine(s), {s['workers']} worker(s), {s['threads']} thread(s)")
    print(f"  CPU (cores busy on average): inference {inf:.2f}, rendering + app {ren:.2f}, source {src:.2f}")
    print("  by thread: " + ", ".join(f"{k} {v / state['wall_seconds']:.2f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0.05))
    print(f"  latency to present p50 / inference p50: "
          f"{state['present_latency_ms_p50'] / max(state['inference_total_ms_p50'], 1e-6):.2f} (target ≤ 1.5)")
report("demo clip, smooth", demo)
report("demo clip, immediate", json.load(open(sys.argv[4])))
report("demo clip, Bevy's render settings (before)", json.load(open(sys.argv[5])))
inf, ren, src, _ = groups(idle)
print(f"inference idle (no frames): render FPS {idle['render_fps']:.1f}; CPU rendering + app {ren:.2f}, inference {inf:.2f}")
# Target: render FPS while tracking ≥ 70 % of the idle render FPS (smooth mode: immediate renders per result).
print(f"ratio: render FPS tracking (smooth) / idle {demo['render_fps'] / max(idle['render_fps'], 1e-6):.2f} (target ≥ 0.70)")
tab = json.load(open(sys.argv[3]))
inf, ren, src, cpu = groups(tab)
s = tab.get("service") or {}
conn = sum(v for k, v in cpu.items() if k.startswith("livepose-conn")) / tab["wall_seconds"]
print(f"demo clip + a tab streaming to the built-in server: {len(tab.get('streams', []))} streams, "
      f"{s.get('engines_loaded')} engine(s), {s.get('workers')} worker(s), {s.get('threads')} thread(s)")
print(f"  render FPS {tab['render_fps']:.1f}, inference FPS of the clip {tab['inference_fps']:.1f}; streams: "
      + ", ".join(f"{x['name']} {x['stats']['results']} results" for x in tab.get("streams", [])))
print(f"  CPU (cores busy on average): inference {inf:.2f}, rendering + app {ren - conn:.2f}, server connections {conn:.2f}, source {src:.2f}")
print("  by thread: " + ", ".join(f"{k} {v / tab['wall_seconds']:.2f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0.05))
PY
if [ "${PROFILE:-0}" = 1 ]; then
  perf report -i "$OUT/perf.data" --stdio --sort comm,dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25 \
    | tee "$OUT/perf-threads.txt"
  perf report -i "$OUT/perf.data" --stdio --sort comm,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 \
    > "$OUT/perf-symbols.txt"
  echo "profile: $OUT/perf-threads.txt (by thread and library), $OUT/perf-symbols.txt (by function)"
fi
echo "screenshots and state: $OUT/"
