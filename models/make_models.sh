#!/usr/bin/env bash
# Rebuild the MediaPipe ONNX models in this folder from the npm packages
# @mediapipe/pose@0.5.1675469404 and @mediapipe/hands@0.4.1675469240.
#
# Usage: models/make_models.sh [WORKDIR] [--out DIR] [--update-sums]
#
#   WORKDIR        where downloads, the Python venv and intermediate files go.
#                  Default: a temporary directory, deleted at the end. A given
#                  WORKDIR is kept and reused (venv, tarballs) on the next run.
#   --out DIR      where the .onnx files are copied (default: this folder).
#   --update-sums  rewrite DIR/SHA256SUMS from the new files instead of
#                  verifying the new files against it.
#
# Steps: npm pack + extract; cut the two models packed in *.data files (offsets
# checked against *_packed_assets_loader.js); check SHA-256 of every .tflite;
# venv from requirements.txt (tf2onnx 1.17.0, tensorflow-cpu 2.21.0,
# onnxruntime 1.31.1); densify pose_detection (densify_tflite.py); tf2onnx
# at opset 17; canonicalize names (canonicalize_onnx.py) so the output is
# byte-reproducible; compare each ONNX with its TFLite original
# (check_models.py); copy to DIR and verify (or write) SHA256SUMS.
#
# All 7 models are produced, pose_landmark_heavy.onnx included; that one
# (55 MB) is listed in .gitignore and not committed.
# Needs: bash, npm, python3 (3.11) with venv, sha256sum; network access to
# the npm registry and PyPI (unless WORKDIR already holds them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

WORK=""
OUT="$HERE"
UPDATE_SUMS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --update-sums) UPDATE_SUMS=1; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) [ -z "$WORK" ] || { echo "only one WORKDIR" >&2; exit 2; }; WORK="$1"; shift ;;
  esac
done

if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/mediapipe-models.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK" "$OUT"
WORK="$(cd "$WORK" && pwd)"
OUT="$(cd "$OUT" && pwd)"
echo "work dir: $WORK"
echo "output:   $OUT"

POSE_PKG="@mediapipe/pose@0.5.1675469404"
HANDS_PKG="@mediapipe/hands@0.4.1675469240"
POSE_TGZ="mediapipe-pose-0.5.1675469404.tgz"
HANDS_TGZ="mediapipe-hands-0.4.1675469240.tgz"

MODELS="pose_detection pose_landmark_lite pose_landmark_full pose_landmark_heavy palm_detection_full hand_landmark_lite hand_landmark_full"

# SHA-256 of the npm tarballs and of the TFLite sources.
KNOWN_SUMS="\
8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84  npm/$POSE_TGZ
bdd5be939c60cbd72a49f4b6141407683cf2a67263598e1a44757d70b3dfcb8a  npm/$HANDS_TGZ
a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85  tflite/pose_detection.tflite
f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61  tflite/pose_landmark_lite.tflite
e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f  tflite/pose_landmark_full.tflite
59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe  tflite/pose_landmark_heavy.tflite
2f25e740121983f68ffc05f99991d524dc0ea812134f6316a26125816941ee85  tflite/palm_detection_full.tflite
d7fde8ac11f8ce03f8663775bfc323f4fc9f2a38062b4f4efa142874ef5b2a48  tflite/hand_landmark_lite.tflite
8c026882c9ec059ce0f8e75266bee5a9a23c341a40e0000df755374d3d1b9b68  tflite/hand_landmark_full.tflite
"

cd "$WORK"

# 1. npm packages ------------------------------------------------------------
echo "== npm pack"
mkdir -p npm
if ! (echo "$KNOWN_SUMS" | grep ' npm/' | sha256sum --status -c - 2>/dev/null); then
  (cd npm && npm pack --silent "$POSE_PKG" "$HANDS_PKG" >/dev/null)
fi
echo "$KNOWN_SUMS" | grep ' npm/' | sha256sum -c -
rm -rf npm/pose npm/hands
mkdir -p npm/pose npm/hands
tar xzf "npm/$POSE_TGZ" -C npm/pose
tar xzf "npm/$HANDS_TGZ" -C npm/hands

# 2. TFLite files --------------------------------------------------------------
echo "== extract .tflite"
rm -rf tflite onnx_raw onnx
mkdir -p tflite onnx_raw onnx
cp npm/pose/package/pose_landmark_lite.tflite \
   npm/pose/package/pose_landmark_full.tflite \
   npm/pose/package/pose_landmark_heavy.tflite \
   npm/hands/package/hand_landmark_lite.tflite \
   npm/hands/package/hand_landmark_full.tflite tflite/
# Cut the packed models, checking the byte ranges against the loader scripts.
"$PYTHON" - <<'EOF'
import json, re

def cut(pkg, stem, path_in_loader, start, end, out):
    loader = open(f"npm/{pkg}/package/{stem}_packed_assets_loader.js").read()
    meta = json.loads(re.search(r"loadPackage\((\{.*?\})\);", loader).group(1))
    (entry,) = [f for f in meta["files"] if f["filename"] == path_in_loader]
    assert (entry["start"], entry["end"]) == (start, end), entry
    data = open(f"npm/{pkg}/package/{stem}_packed_assets.data", "rb").read()
    assert len(data) == meta["remote_package_size"]
    blob = data[start:end]
    assert blob[4:8] == b"TFL3", blob[:8]
    open(out, "wb").write(blob)
    print(f"{out}: bytes [{start}, {end}) of {stem}_packed_assets.data")

cut("pose", "pose_solution",
    "/third_party/mediapipe/modules/pose_detection/pose_detection.tflite",
    0, 2962288, "tflite/pose_detection.tflite")
cut("hands", "hands_solution",
    "/third_party/mediapipe/modules/palm_detection/palm_detection_full.tflite",
    11, 2341291, "tflite/palm_detection_full.tflite")
EOF
echo "$KNOWN_SUMS" | grep ' tflite/' | sha256sum -c -

# 3. Python venv --------------------------------------------------------------
echo "== venv"
if ! cmp -s "$HERE/requirements.txt" venv/.requirements.txt 2>/dev/null; then
  rm -rf venv
  "$PYTHON" -m venv venv
  venv/bin/pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" venv/.requirements.txt
fi
PY="$WORK/venv/bin/python"
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
"$PY" -c 'import sys, tensorflow, tf2onnx, onnxruntime, onnx; print("python", sys.version.split()[0], "| tensorflow", tensorflow.__version__, "| tf2onnx", tf2onnx.__version__, "| onnxruntime", onnxruntime.__version__, "| onnx", onnx.__version__)'

# 4. Densify + convert + canonicalize -----------------------------------------
echo "== densify pose_detection"
"$PY" "$HERE/densify_tflite.py" tflite/pose_detection.tflite tflite/pose_detection_dense.tflite

for m in $MODELS; do
  src="tflite/$m.tflite"
  [ "$m" = pose_detection ] && src="tflite/pose_detection_dense.tflite"
  echo "== convert $m"
  "$PY" -m tf2onnx.convert --tflite "$src" --output "onnx_raw/$m.onnx" --opset 17 \
    > "onnx_raw/$m.log" 2>&1 || { cat "onnx_raw/$m.log" >&2; exit 1; }
  "$PY" "$HERE/canonicalize_onnx.py" "onnx_raw/$m.onnx" "onnx/$m.onnx" "$m.tflite"
done

# 5. Check against TFLite ------------------------------------------------------
echo "== check ONNX vs TFLite"
"$PY" "$HERE/check_models.py" tflite onnx $MODELS

# 6. SHA256SUMS + install ------------------------------------------------------
(cd onnx && sha256sum $(for m in $MODELS; do echo "$m.onnx"; done | sort)) > SHA256SUMS.new
if [ "$UPDATE_SUMS" = 0 ] && [ -s "$OUT/SHA256SUMS" ]; then
  echo "== verify against $OUT/SHA256SUMS"
  if ! diff "$OUT/SHA256SUMS" SHA256SUMS.new; then
    echo "new files differ from $OUT/SHA256SUMS; nothing copied" >&2
    echo "(rerun with --update-sums to accept them)" >&2
    exit 1
  fi
fi
echo "== copy to $OUT"
for m in $MODELS; do cp "onnx/$m.onnx" "$OUT/$m.onnx"; done
if [ "$UPDATE_SUMS" = 1 ] || [ ! -s "$OUT/SHA256SUMS" ]; then
  cp SHA256SUMS.new "$OUT/SHA256SUMS"
  echo "wrote $OUT/SHA256SUMS"
fi
(cd "$OUT" && sha256sum -c SHA256SUMS)
ls -l $(for m in $MODELS; do echo "$OUT/$m.onnx"; done)
echo "done"
