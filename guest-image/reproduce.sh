#!/usr/bin/env bash
# `make reproduce`: the auditor's check. Clones this repository's commit (REF, default
# HEAD) into a fresh temporary directory, builds everything there from the pinned inputs
# (firmware from source, kernel package, static binaries, initramfs) and compares every
# artifact and launch digest with the record published in that commit,
# measurements/published/<version>.image.json. Prints PASS/FAIL per artifact and, on a
# mismatch, which inputs, tools or components differ. Exit 0 only if all are equal.
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ref=${REF:-HEAD}
commit=$(git rev-parse --verify "$ref^{commit}") || die "REF=$ref is not a commit"
if [[ $ref == HEAD && -n $(git status --porcelain --untracked-files=no) ]]; then
	printf 'WARNING [image]: uncommitted changes are NOT part of the check (it uses %s)\n' "$commit" >&2
fi
dir=$(mktemp -d /tmp/keynet-reproduce.XXXXXX)
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf -- "$dir"' EXIT
step "cloning $commit into $dir/keynet"
git clone -q --no-local "$REPO_ROOT" "$dir/keynet"
git -C "$dir/keynet" checkout -q --detach "$commit"
cd "$dir/keynet"
version=$(lock image-version)
published="measurements/published/$version.image.json"
[[ -f $published ]] || die "commit $commit publishes no $published"
step "building from scratch (firmware, kernel, binaries, initramfs); log: $dir/build.log"
# Only downloads are shared (each verified against its pinned sha256).
if ! KEYNET_CACHE_DIR="$REPO_ROOT/out/cache" OVMF_CACHE_DIR="$REPO_ROOT/out/cache/ovmf" \
	guest-image/build.sh >"$dir/build.log" 2>&1; then
	tail -n 40 "$dir/build.log" >&2
	die "the build failed (log above)"
fi
step "comparing with $published"
target/release/keynet-mkimage compare --ours out/image/image.json --published "$published"
