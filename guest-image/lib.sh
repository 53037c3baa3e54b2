# shellcheck shell=bash
# Shared helpers of the guest-image/*.sh scripts. Source it, do not execute it.
# shellcheck disable=SC2034

GI_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$GI_DIR/.." && pwd -P)
GI_LOCK="$GI_DIR/inputs.lock"
# Downloads survive `make clean`; KEYNET_CACHE_DIR lets a second checkout share them.
GI_CACHE="${KEYNET_CACHE_DIR:-$REPO_ROOT/out/cache}/kernel"

step() { printf '==> [image] %s\n' "$*" >&2; }
die() {
	printf 'ERROR [image]: %s\n' "$@" >&2
	exit 1
}

# lock KEY [N]: field N (1-based, default 1) of record KEY in guest-image/inputs.lock.
lock() {
	local key=$1 n=${2:-1} v
	v=$(awk -v key="$key" -v n="$n" '{ sub(/#.*/, "") } $1 == key { print $(n + 1); exit }' "$GI_LOCK")
	[[ -n $v ]] || die "guest-image/inputs.lock: record '$key' has no field $n"
	printf '%s\n' "$v"
}

sha256() { sha256sum -- "$1" | cut -d' ' -f1; }
