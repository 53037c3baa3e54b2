#!/usr/bin/env bash
# Part of `make test`: builds the image a second time from a copy of this checkout at
# another, longer path (its own cargo target directory) and compares every artifact and
# launch digest with out/image/image.json. The firmware is taken from out/ovmf (its own
# two-build check is `make ovmf-repro`); the kernel download cache is shared (verified by
# sha256). `make reproduce` is the full, from-scratch check against the published record.
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ours=out/image/image.json
stamp=out/image-repro/REPRODUCIBLE
[[ -f $ours ]] || die "$ours missing: run 'make image' first"
want=$(sha256 "$ours")
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
	step "reproducibility already shown for this image ($want)"
	exit 0
fi

base=$(mktemp -d /tmp/keynet-repro.XXXXXX)
trap 'rm -rf -- "$base"' EXIT
copy="$base/second/checkout/at/a/longer/path/keynet"
mkdir -p "$copy"
step "copying the tracked source tree to $copy"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$copy"
step "second build in $copy"
(cd "$copy" && KEYNET_OVMF="$REPO_ROOT/out/ovmf/OVMF.fd" \
	KEYNET_CACHE_DIR="$REPO_ROOT/out/cache" guest-image/build.sh) >"$base/build.log" 2>&1 ||
	{ tail -n 40 "$base/build.log" >&2; die "second build failed (log above)"; }
step "comparing the two builds"
if target/release/keynet-mkimage compare --ours "$copy/out/image/image.json" --published "$ours"; then
	mkdir -p "$(dirname "$stamp")"
	printf '%s\n' "$want" >"$stamp"
else
	die "the build at $copy differs from out/image (see above)"
fi
