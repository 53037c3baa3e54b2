#!/usr/bin/env bash
# Coverage-guided fuzzing of attestation-verifier's parsers with cargo-fuzz/libFuzzer on
# the stable toolchain.
#
#   attestation-verifier/fuzz/run.sh [SECONDS] [TARGET...]
#       Fuzz every target (or only the TARGETs named) for SECONDS each (default 60), each
#       starting from a fresh copy of fuzz/seeds/<target>/. Exits 1 if any target crashed,
#       timed out or ran out of memory, and prints the saved input's path.
#
#   attestation-verifier/fuzz/run.sh repro TARGET FILE
#       Run one input through TARGET once (reproduce a crash, with its panic message).
#
# Environment:
#   FUZZ_SANITIZER=address|none  address (default) is cargo-fuzz's default and needs
#                                RUSTC_BOOTSTRAP=1 (set here) for `-Zsanitizer`; none
#                                uses only stable flags and runs ~6x faster.
#   FUZZ_KEEP_CORPUS=1           keep out/fuzz/corpus/<target> from the previous run
#                                (seeds are added) instead of starting afresh.
#   FUZZ_JOBS=N                  parallel targets (default 1; the machine has 2 cores).
#
# Everything written goes under <repo>/out/: tools in out/tools, build in
# out/fuzz/target/<sanitizer>, corpora in out/fuzz/corpus, findings and logs in
# out/fuzz/runs/<timestamp>/.
set -euo pipefail

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE_DIR=$(dirname "$FUZZ_DIR")
ROOT=$(dirname "$CRATE_DIR")
TOOLS="$ROOT/out/tools"
OUT="$ROOT/out/fuzz"

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(report certtable cert crl)
SANITIZER=${FUZZ_SANITIZER:-address}
HOST=$(rustc -vV | sed -n 's/^host: //p')

die() { echo "run.sh: $*" >&2; exit 2; }

case "$SANITIZER" in
  address) export RUSTC_BOOTSTRAP=1 ;;   # cargo-fuzz passes -Zsanitizer=address
  none) ;;
  *) die "FUZZ_SANITIZER must be 'address' or 'none', not '$SANITIZER'" ;;
esac

# cargo-fuzz, installed once into out/tools (skipped when the pinned version is there).
install_cargo_fuzz() {
  if [[ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    cargo install --locked --root "$TOOLS" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
  fi
  export PATH="$TOOLS/bin:$PATH"
}

is_target() {
  local t
  for t in "${ALL_TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  return 1
}

build() {
  export CARGO_TARGET_DIR="$OUT/target/$SANITIZER"
  echo "== building fuzz targets (sanitizer=$SANITIZER, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  # cargo-fuzz wants to run from the crate that holds fuzz/.
  (cd "$CRATE_DIR" && cargo fuzz build --sanitizer "$SANITIZER" "$@")
  BIN_DIR="$CARGO_TARGET_DIR/$HOST/release"
}

# ASan's ODR check trips over Rust's duplicated symbols; cargo-fuzz sets the same.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

if [[ "${1:-}" == "repro" ]]; then
  [[ $# -eq 3 ]] || die "usage: $0 repro TARGET FILE"
  target=$2
  file=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
  is_target "$target" || die "unknown target '$target' (targets: ${ALL_TARGETS[*]})"
  [[ -f "$file" ]] || die "no such file: $3"
  install_cargo_fuzz
  build "$target"
  export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
  exec "$BIN_DIR/$target" "$file"
fi

DURATION=${1:-60}
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, not '$DURATION'"
shift $(( $# > 0 ? 1 : 0 ))
if [[ $# -gt 0 ]]; then
  for t in "$@"; do is_target "$t" || die "unknown target '$t' (targets: ${ALL_TARGETS[*]})"; done
  TARGETS=("$@")
else
  TARGETS=("${ALL_TARGETS[@]}")
fi
JOBS=${FUZZ_JOBS:-1}
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_JOBS must be a positive integer, not '$JOBS'"

install_cargo_fuzz
build

RUN_DIR="$OUT/runs/$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$RUN_DIR"
echo "== fuzzing ${TARGETS[*]} for ${DURATION}s each; logs and findings in $RUN_DIR"

fuzz_one() {
  local t=$1
  local corpus="$OUT/corpus/$t" artifacts="$RUN_DIR/artifacts/$t/" log="$RUN_DIR/$t.log"
  local -a extra=()
  if [[ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$artifacts"
  cp "$FUZZ_DIR/seeds/$t/"* "$corpus/"
  # A report plus its VCEK/ASK/ARK certificate table runs to several KiB.
  [[ "$t" == report ]] && extra+=(-max_len=16384)
  local rc=0
  "$BIN_DIR/$t" "$corpus" \
    -max_total_time="$DURATION" \
    -artifact_prefix="$artifacts" \
    -timeout=10 \
    -print_final_stats=1 \
    "${extra[@]}" >"$log" 2>&1 || rc=$?
  echo "$rc" >"$RUN_DIR/$t.rc"
}

# Run the targets, FUZZ_JOBS at a time.
running=0
for t in "${TARGETS[@]}"; do
  echo "-- $t"
  fuzz_one "$t" &
  running=$((running + 1))
  if (( running >= JOBS )); then wait -n || true; running=$((running - 1)); fi
done
wait

failed=0
echo
echo "== summary (sanitizer=$SANITIZER, ${DURATION}s per target)"
for t in "${TARGETS[@]}"; do
  log="$RUN_DIR/$t.log"
  rc=$(cat "$RUN_DIR/$t.rc" 2>/dev/null || echo "?")   # "?": the runner itself failed
  # libFuzzer's last status line: "#N DONE cov: C ft: F corp: K/S ... exec/s: E rss: R"
  status=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  printf '%-10s rc=%-3s execs=%-10s exec/s=%-8s %s\n' "$t" "$rc" "${execs:-?}" "${rate:-?}" \
    "$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$status" || true)"
  mapfile -t found < <(find "$RUN_DIR/artifacts/$t" -type f | sort)
  if [[ "$rc" != 0 || ${#found[@]} -gt 0 ]]; then
    failed=1
    echo "   FAILED: $t (libFuzzer exit $rc); log: $log"
    for f in "${found[@]}"; do
      echo "   artifact: $f"
      echo "   reproduce: $FUZZ_DIR/run.sh repro $t $f"
    done
    # The panic message (the line after "panicked at") / the sanitizer's verdict.
    { grep -m 1 -A 1 "panicked at" "$log" || true
      grep -m 1 -E "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$log" || true
    } | sed 's/^/   | /'
  fi
done

if (( failed )); then
  echo "== FUZZING FOUND FAILURES (see above)"
  exit 1
fi
echo "== no crashes"
