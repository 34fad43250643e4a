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
