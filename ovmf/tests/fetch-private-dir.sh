#!/usr/bin/env bash
# Regression test: ovmf/fetch.sh must work when the checkout (hence the private
# apt state under its cache dir) lives under a directory apt's sandbox user
# _apt cannot traverse (root's 0700 home, a `mktemp -d` folder). apt then
# warns "Download is performed unsandboxed as root ..." and downloads as root;
# that warning must be shown but not be fatal, while real failures stay fatal.
#
# Usage: ovmf/tests/fetch-private-dir.sh [--rev GITREV] [--empty]
#   --rev GITREV  test fetch.sh + lib.sh as of GITREV instead of the working
#                 tree (e.g. --rev HEAD~1 to see an unfixed version fail)
#   --empty       start from a completely empty cache (downloads ~30 MB);
#                 by default the big orig tarball is seeded from the repo's
#                 cache if it is there and verifies, so only the small debian
#                 tarball is downloaded. Either way `apt-get update` of the
#                 private state runs (~11 MB of Sources index): that is the
#                 code path under test.
# Needs network access to the Debian mirror. Checks, in order:
#   1. fetch.sh succeeds in a mode-0700 `mktemp -d` cache and both tarballs
#      verify against the sha256 pinned in ovmf/inputs.lock;
#   2. (working tree only) the apt log classifier keeps signature and fetch
#      failures fatal, on canned apt output;
#   3. (working tree only) an unreachable mirror still fails the fetch.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd -- "$here/../.." && pwd -P)
rev="" empty=0
while (($#)); do
	case $1 in
	--rev)
		rev=${2:?--rev needs a git revision}
		shift 2
		;;
	--empty)
		empty=1
		shift
		;;
	*)
		printf 'usage: %s [--rev GITREV] [--empty]\n' "$0" >&2
		exit 2
		;;
	esac
done

say() { printf '### %s\n' "$*" >&2; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

tmp=$(mktemp -d)
cleanup() { rm -rf -- "$tmp"; }
trap cleanup EXIT
chmod 0700 "$tmp"

# The scripts under test, copied so that they sit next to the cache in the
# private directory like a checkout would. inputs.lock always comes from the
# working tree.
mkdir -p "$tmp/ovmf" "$tmp/cache"
for f in fetch.sh lib.sh apt-update-log.sh; do
	if [[ -n $rev ]]; then
		# Older revisions have no apt-update-log.sh: that is the unfixed version.
		git -C "$repo" show "$rev:ovmf/$f" >"$tmp/ovmf/$f" 2>/dev/null || rm -f -- "$tmp/ovmf/$f"
	else
		cp -- "$repo/ovmf/$f" "$tmp/ovmf/$f"
	fi
done
cp -- "$repo/ovmf/inputs.lock" "$tmp/ovmf/inputs.lock"
say "testing ovmf/fetch.sh ${rev:+as of $rev }in $tmp (mode $(stat -c %a "$tmp"))"

# Is this really the situation of the bug? (apt only sandboxes when run as root.)
if [[ $(id -u) == 0 ]] && getent passwd _apt >/dev/null; then
	if runuser -u _apt -- test -x "$tmp/cache" 2>/dev/null; then
		fail "_apt can reach $tmp/cache; the test would not reproduce the problem"
	fi
	sandbox_case=1
	say "_apt cannot reach the private apt state (as for a checkout under /root)"
else
	sandbox_case=0
	say "not root or no _apt user: apt will not sandbox, so the warning cannot occur here"
fi

# Pinned names and hashes, read independently of lib.sh.
lockf() { awk -v k="$1" -v n="$2" '{ sub(/#.*/, "") } $1 == k { print $(n + 1); exit }' "$repo/ovmf/inputs.lock"; }
names=("$(lockf orig-tarball 1)" "$(lockf debian-tarball 1)")
shas=("$(lockf orig-tarball 2)" "$(lockf debian-tarball 2)")
sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

if ((empty == 0)); then
	seed="${OVMF_CACHE_DIR:-$repo/out/cache/ovmf}/${names[0]}"
	if [[ -f $seed && $(sha_of "$seed") == "${shas[0]}" ]]; then
		cp -- "$seed" "$tmp/cache/"
		say "seeded ${names[0]} from $seed; ${names[1]} will be downloaded"
	else
		say "no verified ${names[0]} to seed from; starting with an empty cache"
	fi
fi

# --- 1. the fetch itself ----------------------------------------------------
start=$SECONDS
rc=0
OVMF_CACHE_DIR="$tmp/cache" bash "$tmp/ovmf/fetch.sh" >"$tmp/fetch.out" 2>&1 || rc=$?
cat "$tmp/fetch.out" >&2
say "fetch.sh exit status $rc after $((SECONDS - start)) s"
((rc == 0)) || fail "fetch.sh failed in a private (0700) directory"

[[ -f $tmp/cache/apt/update.log ]] || fail "the private apt state was not used (no apt/update.log)"
if ((sandbox_case)); then
	grep -q "couldn't be accessed by user '_apt'" "$tmp/cache/apt/update.log" ||
		fail "apt did not warn about the sandbox user; the test did not reproduce the situation"
	grep -q '^NOTE \[apt update\] (benign, not fatal): W: Download is performed unsandboxed' "$tmp/fetch.out" ||
		fail "the benign sandbox warning was not shown as a note"
fi
for i in "${!names[@]}"; do
	f="$tmp/cache/${names[$i]}"
	[[ -f $f ]] || fail "${names[$i]} missing after the fetch"
	got=$(sha_of "$f")
	[[ $got == "${shas[$i]}" ]] || fail "${names[$i]} has sha256 $got, pinned ${shas[$i]}"
	say "verified ${names[$i]} sha256 $got"
done

if [[ -n $rev ]]; then
	say "PASS (fetch part only; the checks of the fix apply to the working tree)"
	exit 0
fi

# --- 2. classifier: real failures stay fatal -------------------------------
# shellcheck source=ovmf/lib.sh
. "$tmp/ovmf/lib.sh"
u="http://deb.debian.org/debian trixie InRelease"
benign=(
	"W: Download is performed unsandboxed as root as file '/root/k/out/cache/ovmf/apt/lists/partial/deb.debian.org_debian_dists_trixie_InRelease' couldn't be accessed by user '_apt'. - pkgAcquire::Run (13: Permission denied)"
	"W: $u: Signature by key 4CB50190207B4758A3F73A796ED0E7B82643E131 uses weak algorithm (rsa1024)"
	"N: Some notice"
	"Get:1 $u [140 kB]"
)
fatal=(
	"W: GPG error: $u: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 6ED0E7B82643E131"
	"E: The repository '$u' is not signed."
	"W: The repository '$u' is not signed."
	"W: Failed to fetch http://deb.debian.org/debian/dists/trixie/InRelease  Could not resolve 'deb.debian.org'"
	"W: Some index files failed to download. They have been ignored, or old ones used instead."
	"E: Failed to fetch http://deb.debian.org/debian/dists/trixie/main/source/Sources.xz  404  Not Found"
	"Err:1 $u"
	"W: $u: Signature by key 4CB50190207B4758A3F73A796ED0E7B82643E131 uses weak digest algorithm (SHA1)"
	"W: Something apt never said before"
	"Warning: GPG error: $u: NO_PUBKEY 6ED0E7B82643E131"
	"Error: The repository '$u' is not signed."
)
printf '%s\n' "${benign[@]}" >"$tmp/benign.log"
apt_update_log_ok "$tmp/benign.log" 2>/dev/null || fail "benign apt output judged fatal"
for line in "${fatal[@]}"; do
	# Each fatal line hidden among benign ones must still fail the check.
	printf '%s\n' "${benign[@]}" "$line" >"$tmp/fatal.log"
	if apt_update_log_ok "$tmp/fatal.log" 2>/dev/null; then
		fail "fatal apt output passed: $line"
	fi
done
say "classifier: ${#benign[@]} benign lines pass, ${#fatal[@]} fatal lines each fail"

# --- 3. an unreachable mirror still fails the fetch ------------------------
# (apt itself reports this as W: only with exit status 0 unless told otherwise.)
rm -rf -- "$tmp/cache" && mkdir -p "$tmp/cache"
rc=0
OVMF_CACHE_DIR="$tmp/cache" OVMF_DEBIAN_MIRROR=http://keynet-test.invalid/debian \
	bash "$tmp/ovmf/fetch.sh" >"$tmp/fetch-bad.out" 2>&1 || rc=$?
((rc != 0)) || {
	cat "$tmp/fetch-bad.out" >&2
	fail "fetch.sh succeeded with an unreachable mirror"
}
grep -q '^ERROR \[ovmf\]: apt-get update of the private' "$tmp/fetch-bad.out" || {
	cat "$tmp/fetch-bad.out" >&2
	fail "fetch.sh with an unreachable mirror failed, but not at apt-get update"
}
say "unreachable mirror: fetch.sh fails (exit status $rc): $(grep -m1 -E '^ERROR \[apt update\]: ' "$tmp/fetch-bad.out" || true)"
say "PASS"
