#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine of the project's kind. Idempotent: each step is skipped when done.
#   - Debian packages:
#       cmake, nasm        build libjpeg-turbo, which decodes JPEG exactly as the MediaPipe references did
#       libclang-dev       bindgen for the V4L2 camera bindings (nokhwa) and FFmpeg's (ffmpeg-sys-next)
#       pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
#                          FFmpeg 5.1's libraries: video files (MP4, MOV, MKV, WebM, AVI) in analyze,
#                          the app's file source and replay, decoded and converted as OpenCV does
#       python3            ONNX Runtime comes from a PyPI wheel
#       libx11-6 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0
#                          loaded at run time by the window (winit, X11)
#       xvfb xauth mesa-vulkan-drivers libvulkan1
#                          a virtual screen and software Vulkan (lavapipe) for the headless app test
#       chromium           headless browser for the end-to-end test of the web client and the report test
#       prometheus         promtool, which checks the server's /metrics in the tests (the server itself
#                          is not started)
#       haproxy            the load balancer of the failover test (deploy/haproxy.cfg)
#   - npm: playwright-core (tests/browser/package-lock.json) drives that Chromium, and socket.io-client 4.8.4
#     is the prototype's client for the Socket.IO test; Node.js is on the machine.
#   - PyPI, pinned in tests/requirements.txt, in a venv ($CACHE/test-venv): python-osc 1.10.2 (the
#     independent OSC decoder of the VMC test), pandas 3.1.1 + numpy and trc-data-reader 0.4.1 (the
#     readers of the CSV and TRC exports' test), python-socketio[client] 5.18.1 (the Socket.IO test's
#     Python client). ~47 MB of wheels, ~35 s.
#   - ONNX Runtime 1.31.1: libonnxruntime.so.1.31.1 out of the PyPI wheel onnxruntime==1.31.1, into .ort/.
# Usage: scripts/setup.sh [--no-apt]
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=1.31.1
ORT_LIB=".ort/libonnxruntime.so.${ORT_VERSION}"

need_apt=()
for pkg in cmake nasm libclang-dev pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
           python3 libx11-6 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0 \
           xvfb xauth mesa-vulkan-drivers libvulkan1 chromium prometheus haproxy; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ "${1:-}" != "--no-apt" ] && [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/livepose"
if [ ! -f "$ORT_LIB" ] && [ -f "$CACHE/libonnxruntime.so.${ORT_VERSION}" ]; then
  mkdir -p .ort && cp "$CACHE/libonnxruntime.so.${ORT_VERSION}" "$ORT_LIB"
fi
if [ ! -f "$ORT_LIB" ]; then
  echo "setup: fetching ONNX Runtime ${ORT_VERSION} from PyPI (onnxruntime==${ORT_VERSION} wheel)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "onnxruntime==${ORT_VERSION}"
  wheel=$(ls "$tmp"/onnxruntime-*.whl)
  mkdir -p .ort
  python3 - "$wheel" "$ORT_LIB" <<'PY'
import sys, zipfile, shutil
wheel, dest = sys.argv[1], sys.argv[2]
member = "onnxruntime/capi/libonnxruntime.so.1.31.1"
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
  mkdir -p "$CACHE" && cp "$ORT_LIB" "$CACHE/" || true
  echo "setup: ONNX Runtime library at $ORT_LIB"
fi

if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/socket.io-client ]; then
  if command -v npm >/dev/null; then
    echo "setup: installing playwright-core and socket.io-client for the browser and Socket.IO tests (npm ci in tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
  else
    echo "setup: npm not found; the browser end-to-end test needs Node.js and npm" >&2
  fi
fi

TEST_VENV="$CACHE/test-venv"
if [ ! -x "$TEST_VENV/bin/python" ] || ! "$TEST_VENV/bin/python" -c "import pythonosc, pandas, trc, socketio, websocket" 2>/dev/null; then
  echo "setup: python-osc, pandas, trc-data-reader, python-socketio for the VMC, export and Socket.IO tests (venv $TEST_VENV, tests/requirements.txt)"
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
