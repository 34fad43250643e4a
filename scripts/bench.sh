#!/usr/bin/env bash
# Speed benchmark, one command (`make bench`): livepose's pipeline (benches/pipeline.rs) and, in the same
# run, the official MediaPipe 0.10.21 Python pipeline on the same decoded frames (video mode, pose full +
# hands full, pose.process then hands.process per frame, as the prototype did), then the ratio.
# MediaPipe's speed varies by up to ~35 % between runs minutes apart, hence the same-run comparison.
#   LIVEPOSE_MP_VENV  venv with mediapipe (default ~/.cache/livepose/mediapipe-venv; made if missing)
#   PASSES            passes per configuration (default 3; the best is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LIVEPOSE_MP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/livepose/mediapipe-venv}"
PASSES="${PASSES:-3}"
OUT=target/bench
mkdir -p "$OUT"
if ! "$VENV/bin/python" -c "import mediapipe" >/dev/null 2>&1; then
  echo "bench: setting up official MediaPipe 0.10.21 in $VENV (PyPI + npm, once)"
  bash scripts/refdata/setup_mediapipe_venv.sh "$VENV"
fi
echo "== livepose (cargo bench --bench pipeline)"
cargo bench --bench pipeline -- --passes "$PASSES" --json "$OUT/livepose.json"
echo
echo "== official MediaPipe 0.10.21, same frames"
"$VENV/bin/python" scripts/refdata/time_mediapipe.py --data tests/fixtures \
  --videos carphone_640.mjpeg kenburns_messi.mjpeg --passes "$PASSES" --modes both --json "$OUT/mediapipe.json"
echo
python3 - "$OUT/livepose.json" "$OUT/mediapipe.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1])); mp = json.load(open(sys.argv[2]))["results"]
print("| livepose set-up | clip | livepose FPS | MediaPipe FPS | ratio |")
print("|---|---|---|---|---|")
for setup, clips in ours.items():
    for clip, r in clips.items():
        m = mp.get(clip, {}).get("both", {}).get("best")
        if m:
            print(f"| {setup} | {clip} | {r['fps_overall']:.1f} | {m['fps']:.1f} | {r['fps_overall'] / m['fps']:.2f}x |")
PY
echo
echo "== several people: livepose analyze --max-people 3 --no-hands over the crossing clips (whole process, release"
echo "   build, best of $PASSES) against official MediaPipe Tasks PoseLandmarker (VIDEO mode, num_poses 3; its"
echo "   detect_for_video time only), same run"
TASK="${XDG_CACHE_HOME:-$HOME/.cache}/livepose/pose_landmarker_full.task"
[ -f "$TASK" ] || "$VENV/bin/python" scripts/refdata/make_pose_task.py "$TASK"
cargo build --release --quiet --bin livepose
python3 - "$VENV/bin/python" "$TASK" "$PASSES" "$OUT" <<'PY'
import json, subprocess, sys, time
venv_python, task, passes, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = []
for clip in ["mp_cross2", "mp_cross3"]:
    path = f"tests/fixtures/multiperson/{clip}.mjpeg"
    frames = open(path, "rb").read().count(b"\xff\xd9")
    ours = []
    for _ in range(passes):
        t0 = time.perf_counter()
        subprocess.run(["target/release/livepose", "analyze", path, "--max-people", "3", "--no-hands",
                        "--out", f"{out}/people"], check=True, capture_output=True)
        ours.append(frames / (time.perf_counter() - t0))
    theirs = []
    for _ in range(passes):
        r = subprocess.run([venv_python, "scripts/refdata/mediapipe_tasks_refs.py", path, f"{out}/{clip}.tasks.jsonl",
                            "3", task], check=True, capture_output=True, text=True)
        theirs.append(json.loads(r.stdout.strip().splitlines()[-1])["fps"])
    rows.append({"clip": clip, "frames": frames, "livepose_fps": round(max(ours), 1),
                 "mediapipe_tasks_fps": round(max(theirs), 1), "ratio": round(max(ours) / max(theirs), 2)})
json.dump(rows, open(f"{out}/people.json", "w"), indent=1)
print("| clip | livepose FPS (whole process) | MediaPipe Tasks FPS | ratio |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r['clip']} | {r['livepose_fps']} | {r['mediapipe_tasks_fps']} | {r['ratio']:.2f}x |")
PY
