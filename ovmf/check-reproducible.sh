#!/usr/bin/env bash
# Reproducibility check: build OVMF twice from scratch (each build wipes and
# recreates the fixed build dir and rebuilds BaseTools; nothing is reused
# except the sha256-verified source tarballs) and assert that
#   1. both OVMF.fd are bit-identical (and so are both ovmf.json), and
#   2. they equal the sha256/size pinned in ovmf/inputs.lock.
# Build 1 goes to OUT_DIR (default <repo>/out/ovmf), build 2 to
# OUT_DIR_2 (default <repo>/out/ovmf-repro).
#
# With OVMF_ALLOW_DRIFT=1 a pin mismatch is reported but not fatal (for
# re-pinning); bit-identity of the two builds is always required.
set -euo pipefail

# shellcheck source=ovmf/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

OUT_1=${OUT_DIR:-$REPO_ROOT/out/ovmf}
OUT_2=${OUT_DIR_2:-$REPO_ROOT/out/ovmf-repro}
[[ $OUT_1 != "$OUT_2" ]] || die "OUT_DIR and OUT_DIR_2 must differ"
PINNED_SHA=$(lock_field output 2)
PINNED_SIZE=$(lock_field output 3)

T0=$SECONDS
declare -a DURATION
for i in 1 2; do
	out_var=OUT_$i
	log "reproducibility check: build $i/2 -> ${!out_var}"
	t=$SECONDS
	if ! OUT_DIR=${!out_var} "$OVMF_DIR/build.sh"; then
		printf '\nreproducible-build check: FAIL (build %d failed, see above)\n' "$i" >&2
		exit 1
	fi
	DURATION[i]=$((SECONDS - t))
done

sha1=$(sha256_of "$OUT_1/OVMF.fd")
sha2=$(sha256_of "$OUT_2/OVMF.fd")
size1=$(size_of "$OUT_1/OVMF.fd")
size2=$(size_of "$OUT_2/OVMF.fd")

printf '\n==== OVMF reproducibility check ====\n'
printf '  build 1: %s  %s bytes  (%ss)  %s\n' "$sha1" "$size1" "${DURATION[1]}" "$OUT_1/OVMF.fd"
printf '  build 2: %s  %s bytes  (%ss)  %s\n' "$sha2" "$size2" "${DURATION[2]}" "$OUT_2/OVMF.fd"
printf '  pinned:  %s  %s bytes  (ovmf/inputs.lock)\n' "$PINNED_SHA" "$PINNED_SIZE"

fail=0
if [[ $sha1 == "$sha2" ]] && cmp -s -- "$OUT_1/OVMF.fd" "$OUT_2/OVMF.fd"; then
	printf '  [PASS] the two builds are bit-identical\n'
else
	printf '  [FAIL] the two builds differ (non-deterministic build)\n'
	fail=1
fi
if cmp -s -- "$OUT_1/ovmf.json" "$OUT_2/ovmf.json"; then
	printf '  [PASS] ovmf.json identical\n'
else
	printf '  [FAIL] ovmf.json differs:\n'
	diff -u -- "$OUT_1/ovmf.json" "$OUT_2/ovmf.json" | sed 's/^/      /' || true
	fail=1
fi
if [[ $sha1 == "$PINNED_SHA" && $size1 == "$PINNED_SIZE" ]]; then
	printf '  [PASS] matches the pinned sha256\n'
elif [[ ${OVMF_ALLOW_DRIFT:-0} == 1 ]]; then
	printf '  [DRIFT] differs from the pin (allowed by OVMF_ALLOW_DRIFT=1); to re-pin put this in ovmf/inputs.lock:\n'
	printf '      output         OVMF.fd  %s  %s\n' "$sha1" "$size1"
else
	printf '  [FAIL] differs from the pinned sha256\n'
	fail=1
fi
printf '  total time: %ss\n' "$((SECONDS - T0))"
if ((fail)); then
	printf 'reproducible-build check: FAIL\n'
	exit 1
fi
printf 'reproducible-build check: PASS\n'
