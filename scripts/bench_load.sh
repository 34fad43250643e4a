#!/usr/bin/env bash
# The server under load, one command (`make bench-load`): for each clip, official MediaPipe's
# single-stream speed on it (scripts/refdata/time_mediapipe.py, video mode, pose then hands per frame),
# then benches/load.rs on it (N = 1, 2, 4, 8 clients on carphone_640 and kenburns_messi, the floor, the share and
# the MediaPipe ratio, then memory over 10 000 frames). This machine's speed drifts between days, so
# only the figures of one run are compared.
#   LIVEPOSE_MP_VENV  venv with mediapipe (default ~/.cache/livepose/mediapipe-venv; made if missing)
#   SECONDS_PER_RUN   seconds per N (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LIVEPOSE_MP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/livepose/mediapipe-venv}"
OUT=target/bench
mkdir -p "$OUT"
if ! "$VENV/bin/python" -c "import mediapipe" >/dev/null 2>&1; then
  echo "bench-load: setting up official MediaPipe 0.10.21 in $VENV (PyPI + npm, once)"
  bash scripts/refdata/setup_mediapipe_venv.sh "$VENV"
fi
cargo build --release --bench load --bin livepose
# Per clip: MediaPipe on that clip, then the server on it, so the two are minutes apart at most.
for clip in carphone_640.mjpeg kenburns_messi.mjpeg; do
  echo "== official MediaPipe 0.10.21, one stream, $clip"
  "$VENV/bin/python" scripts/refdata/time_mediapipe.py --data tests/fixtures \
    --videos "$clip" --passes 3 --modes both --json "$OUT/mediapipe-load-${clip%.mjpeg}.json"
  echo "== livepose serve under load, $clip (cargo bench --bench load)"
  memory=--no-memory
  [ "$clip" = kenburns_messi.mjpeg ] && memory=
  cargo bench --bench load -- "${SECONDS_PER_RUN:-15}" --clips "$clip" $memory \
    --mediapipe "$OUT/mediapipe-load-${clip%.mjpeg}.json" --json "$OUT/load-${clip%.mjpeg}.json"
done
