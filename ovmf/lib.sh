# shellcheck shell=bash
# Shared helpers for the ovmf/*.sh scripts. Source it, do not execute it.
# The variables below are used by the scripts that source this file.
# shellcheck disable=SC2034

OVMF_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$OVMF_DIR/.." && pwd -P)
LOCK_FILE="$OVMF_DIR/inputs.lock"

# The FIXED absolute build location. It is part of the build's identity:
# edk2's GenFw reserves strlen(<absolute .dll path>)+1 bytes for the debug
# entry of every PE image (kept, zeroed, in RELEASE), so the same sources
# built under a path of another length give a different OVMF.fd. Never make this configurable; changing it requires
# re-pinning the output hash (see README.md).
OVMF_BUILD_ROOT=/tmp/keynet-ovmf-build
OVMF_WORKSPACE="$OVMF_BUILD_ROOT/edk2"
OVMF_BUILD_LOCK=/tmp/keynet-ovmf-build.lock

# Download cache for the pinned tarballs (and the private apt state).
OVMF_CACHE_DIR="${OVMF_CACHE_DIR:-$REPO_ROOT/out/cache/ovmf}"

log() { printf '==> [ovmf] %s\n' "$*" >&2; }
warn() { printf 'WARNING [ovmf]: %s\n' "$*" >&2; }
die() {
	printf 'ERROR [ovmf]: %s\n' "$@" >&2
	exit 1
}

# lock_field KEY N -> prints field N (1-based, after the key) of the first
# record KEY in inputs.lock; dies if the record or field is missing.
lock_field() {
	local key=$1 n=$2 value
	value=$(awk -v key="$key" -v n="$n" '
		{ sub(/#.*/, "") }
		$1 == key { if (NF > n) print $(n + 1); found = 1; exit }
		END { if (!found) exit 1 }' "$LOCK_FILE") ||
		die "record '$key' missing in $LOCK_FILE"
	[[ -n $value ]] || die "record '$key' in $LOCK_FILE has no field $n"
	printf '%s\n' "$value"
}

sha256_of() {
	local sum
	sum=$(sha256sum -- "$1") || return 1
	printf '%s\n' "${sum%% *}"
}

size_of() { stat -c %s -- "$1"; }

# apt_update_log_ok LOG: see apt-update-log.sh (shared with guest-image/relock.sh).
# shellcheck source=ovmf/apt-update-log.sh
. "$OVMF_DIR/apt-update-log.sh"
