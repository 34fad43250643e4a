#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (nightly toolchain, AddressSanitizer, libFuzzer) and prints one
# line per target: executions, execs/s, coverage (libFuzzer's cov/ft), corpus size, peak RSS.
#   scripts/fuzz.sh SECONDS        each target for SECONDS (make fuzz: FUZZ_SECONDS, default 600)
#   scripts/fuzz.sh --runs N       each target for N executions (the 10-million runs of the note)
#   scripts/fuzz.sh --smoke        each target for 5 s from its seeds (part of make test)
#   FUZZ_TARGETS="a b"             only these targets
#   FUZZ_NO_BUILD=1                run the targets as built (no cargo fuzz build first)
#   FUZZ_SANITIZER=none            build without AddressSanitizer (about twice the executions per second;
#                                  use another CARGO_TARGET_DIR so the ASan build stays)
# fuzz/ is its own cargo workspace, so its binaries land in its own target directory: fuzz/target, or
# $CARGO_TARGET_DIR when that is set. The script asks cargo which (`cargo metadata`), so the path it runs
# the binaries from is the one `cargo fuzz build` wrote to, with or without the variable.
# The working corpus grows in $TARGET/fuzz-corpus/<target> (the committed seeds in fuzz/seeds/ are
# read, never written); a crash, leak, hang (-timeout) or out-of-memory (-rss_limit_mb, -malloc_limit_mb)
# stops the target with its input in $TARGET/fuzz-artifacts/<target>/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="$(cd fuzz && cargo metadata --format-version 1 --no-deps --offline 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" || {
  echo "fuzz: cannot ask cargo for fuzz/'s target directory (cargo metadata failed)" >&2; exit 1; }
mkdir -p "$TARGET"
mode="time"; amount=600; smoke=""
case "${1:-}" in
  --smoke) mode="time"; amount=5; smoke=1 ;;
  --runs) mode="runs"; amount="${2:?--runs N}" ;;
  "") ;;
  *) amount="$1" ;;
esac
if ! rustc +nightly -V >/dev/null 2>&1; then
  echo "fuzz: needs the nightly toolchain (machines of this kind have it; elsewhere: rustup toolchain install nightly)" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install --quiet cargo-fuzz --locked
fi
TRIPLE="$(rustc +nightly -vV | sed -n 's/^host: //p')"
targets="${FUZZ_TARGETS:-wire_binary wire_json http_upgrade image_decode mjpeg_split session_files result_line socketio_packets}"
# Largest input per target: a frame message or an image of a few KB reaches every branch of the parsers;
# the session target holds three files.
max_len() { case "$1" in session_files|result_line) echo 65536 ;; *) echo 16384 ;; esac; }
[ -n "${FUZZ_NO_BUILD:-}" ] || (cd fuzz && cargo +nightly fuzz build --release -s "${FUZZ_SANITIZER:-address}" >/dev/null 2>"$TARGET/fuzz-build.log") || {
  tail -30 "$TARGET/fuzz-build.log"; echo "fuzz: build failed ($TARGET/fuzz-build.log)"; exit 1; }
status=0
printf '%-14s %12s %10s %8s %8s %8s %8s %s\n' target execs execs/s cov ft corpus rss_mb result
for t in $targets; do
  corpus="$TARGET/fuzz-corpus/$t"; artifacts="$TARGET/fuzz-artifacts/$t"
  # The smoke run starts from the committed seeds alone, so its 5 s are spent fuzzing, not loading a
  # corpus grown by long runs.
  [ -n "$smoke" ] && { corpus="$TARGET/fuzz-smoke-corpus/$t"; rm -rf "$corpus"; }
  mkdir -p "$corpus" "$artifacts"
  limit="-max_total_time=$amount"; [ "$mode" = runs ] && limit="-runs=$amount"
  log="$TARGET/fuzz-${smoke:+smoke-}$t.log"
  set +e
  # The binary itself, not `cargo fuzz run`: no cargo lock held for the run (builds can go on).
  "$TARGET/$TRIPLE/release/$t" "$corpus" "fuzz/seeds/$t" \
     $limit -max_len="$(max_len "$t")" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
     -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -ao 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rss=$(grep -ao 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -aE '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || true)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || true)
  files=$(ls "$corpus" | wc -l)
  result=ok; [ $rc -ne 0 ] && { result="FAILED (exit $rc, $log)"; status=1; }
  [ $rc -eq 0 ] && [ "${execs:-0}" -eq 0 ] && { result="FAILED (no executions, $log)"; status=1; }
  printf '%-14s %12s %10s %8s %8s %8s %8s %s\n' "$t" "${execs:-0}" "${rate:-0}" "${cov:-?}" "${ft:-?}" "$files" "${rss:-?}" "$result"
  [ $rc -ne 0 ] && grep -E 'ERROR|panicked|SUMMARY|artifact' "$log" | head -8 || true
done
exit $status
