#!/usr/bin/env bash
# Reproducible build of OVMF's AmdSev platform (OvmfPkg/AmdSev/AmdSevX64.dsc,
# GCC5, RELEASE, X64) from the pinned Debian trixie edk2 source package.
#
#   ovmf/build.sh            -> out/ovmf/OVMF.fd, out/ovmf/ovmf.json, out/ovmf/build.log
#
# Environment:
#   OUT_DIR=<dir>            output directory (default: <repo>/out/ovmf)
#   OVMF_ALLOW_DRIFT=1       accept an OVMF.fd whose sha256 differs from the pin
#                            in ovmf/inputs.lock (for re-pinning only)
#   OVMF_JOBS=<n>            parallel jobs (default: nproc; does not affect output)
#   OVMF_CACHE_DIR=<dir>     tarball cache (default: <repo>/out/cache/ovmf)
#   OVMF_KEEP_BUILD=1        keep the build tree after a successful build
#
# The build always runs in the fixed directory /tmp/keynet-ovmf-build/edk2,
# which is wiped and recreated every time (see README.md for why) and removed
# after a successful build.
set -euo pipefail
umask 022

# shellcheck source=ovmf/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

OUT_DIR=${OUT_DIR:-$REPO_ROOT/out/ovmf}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd -- "$OUT_DIR" && pwd -P)
LOG="$OUT_DIR/build.log"
JOBS=${OVMF_JOBS:-$(nproc)}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "OVMF_JOBS must be a positive integer"

PLATFORM=OvmfPkg/AmdSev/AmdSevX64.dsc
# Upstream defaults of AmdSevX64.dsc: no -D defines, no --pcd overrides
# (Debian's own OVMF builds add vendor/version/date PCDs and network/TPM
# defines; we deliberately do not, see README.md).
BUILD_ARGS=(-a X64 -t GCC5 -b RELEASE -p "$PLATFORM")
FV_OUT="$OVMF_WORKSPACE/Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd"

STEPS=7
step() { log "[$1/$STEPS] $2"; }

# Never leave a stale artifact behind: a failed build must not look like a
# successful one to make & co.
rm -f -- "$OUT_DIR/OVMF.fd" "$OUT_DIR/ovmf.json" "$OUT_DIR/OVMF.fd.unpinned"
: >"$LOG"

on_exit() {
	local rc=$?
	if ((rc != 0)) && [[ -s $LOG ]]; then
		printf '\n---- last 40 lines of %s ----\n' "$LOG" >&2
		tail -n 40 -- "$LOG" >&2
		printf -- '---- end of log; build FAILED (exit %d) ----\n' "$rc" >&2
	fi
}
trap on_exit EXIT

# run_logged DESCRIPTION CMD...: run CMD with all output appended to $LOG,
# printing a heartbeat (elapsed time + last log line) every 30 s.
run_logged() {
	local desc=$1 start=$SECONDS next=30 pid rc last
	shift
	log "    $desc ..."
	"$@" >>"$LOG" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		if ((SECONDS - start >= next)); then
			last=$(tail -n 1 -- "$LOG" 2>/dev/null | cut -c1-100 || true)
			log "    ... $((SECONDS - start))s: $last"
			next=$((next + 30))
		fi
	done
	rc=0
	wait "$pid" || rc=$?
	if ((rc != 0)); then
		log "    $desc FAILED after $((SECONDS - start))s (full log: $LOG)"
		return "$rc"
	fi
	log "    $desc done in $((SECONDS - start))s"
}

T0=$SECONDS

# --- 1. build dependencies ---------------------------------------------
step 1 "build dependencies (ovmf/deps.sh)"
"$OVMF_DIR/deps.sh"

# --- 2. pinned sources -----------------------------------------------------
step 2 "pinned sources (ovmf/fetch.sh)"
"$OVMF_DIR/fetch.sh"
ORIG="$OVMF_CACHE_DIR/$(lock_field orig-tarball 1)"
DEBIAN="$OVMF_CACHE_DIR/$(lock_field debian-tarball 1)"
# fetch.sh verified them; re-check right before use (cheap, and closes the
# window between fetch and extraction).
for f in "$ORIG:$(lock_field orig-tarball 2)" "$DEBIAN:$(lock_field debian-tarball 2)"; do
	[[ $(sha256_of "${f%%:*}") == "${f##*:}" ]] || die "${f%%:*} changed after verification"
done

# --- 3. fresh, fixed build directory ---------------------------------------
step 3 "fresh build dir $OVMF_WORKSPACE"
# One build at a time: the build dir is a fixed, shared path.
exec 9>"$OVMF_BUILD_LOCK"
flock -n 9 || {
	log "    another OVMF build holds $OVMF_BUILD_LOCK; waiting"
	flock 9
}
rm -rf -- "$OVMF_BUILD_ROOT"
mkdir -p -- "$OVMF_WORKSPACE" "$OVMF_BUILD_ROOT/home"
log "    extracting $(basename -- "$ORIG")"
tar -xJf "$ORIG" -C "$OVMF_WORKSPACE" --strip-components=1 --no-same-owner --no-same-permissions
log "    extracting $(basename -- "$DEBIAN")"
tar -xJf "$DEBIAN" -C "$OVMF_WORKSPACE" --no-same-owner --no-same-permissions
[[ -f $OVMF_WORKSPACE/edksetup.sh && -f $OVMF_WORKSPACE/debian/patches/series ]] ||
	die "unexpected tarball layout in $OVMF_WORKSPACE"

# --- 4. Debian patches + local modifications -------------------------------
step 4 "apply debian/patches/series (strict: no fuzz) + Keynet local changes"
cd "$OVMF_WORKSPACE"
PATCH_LIST="$OVMF_BUILD_ROOT/patches-applied.txt"
LOCAL_MODS="$OVMF_BUILD_ROOT/local-modifications.txt"
: >"$PATCH_LIST"
n=0
while read -r name opt _; do
	[[ -z $name || $name == \#* ]] && continue
	strip=-p1
	[[ ${opt:-} =~ ^-p[0-9]+$ ]] && strip=$opt
	n=$((n + 1))
	log "    patch $n: $name"
	patch "$strip" --batch --forward --fuzz=0 --no-backup-if-mismatch --quiet \
		-i "debian/patches/$name" >>"$LOG" 2>&1 ||
		die "debian/patches/$name does not apply cleanly (see $LOG)"
	printf '%s\n' "$name" >>"$PATCH_LIST"
done <debian/patches/series
((n > 0)) || die "debian/patches/series lists no patches"
log "    applied $n Debian patches"

# (a) GRUB stays out of the firmware. Debian's GRUB has no 'sevsecret'
# module, so the grub.efi that AmdSevX64.dsc's PREBUILD (Grub/grub.sh) would
# make cannot be built; direct kernel boot (QemuKernelLoaderFsDxe with
# BlobVerifierLibSevHashes) never uses it. Grub.inf still wraps
# OvmfPkg/AmdSev/Grub/grub.efi as a PE32 binary, so provide it EMPTY.
: >OvmfPkg/AmdSev/Grub/grub.efi
# (b) ... and never run grub.sh: drop the PREBUILD line (the .dsc has CRLF
# line endings). Exactly one line must go, otherwise upstream changed.
dsc_before=$(wc -l <"$PLATFORM")
sed -i -E '/^[[:space:]]*PREBUILD[[:space:]]*=[[:space:]]*sh OvmfPkg\/AmdSev\/Grub\/grub\.sh[[:space:]]*$/d' "$PLATFORM"
dsc_after=$(wc -l <"$PLATFORM")
((dsc_before - dsc_after == 1)) || die "expected to remove exactly one PREBUILD line from $PLATFORM"
! grep -q 'PREBUILD' "$PLATFORM" || die "$PLATFORM still has a PREBUILD"
cat >"$LOCAL_MODS" <<'EOF'
OvmfPkg/AmdSev/Grub/grub.efi: created empty (GRUB not embedded; direct kernel boot only)
OvmfPkg/AmdSev/AmdSevX64.dsc: PREBUILD line (sh OvmfPkg/AmdSev/Grub/grub.sh) removed
EOF

# --- 5/6. controlled build environment -------------------------------------
# env -i: nothing from the caller's environment leaks in (no pyenv python,
# CFLAGS, ELF_PACKAGE_METADATA, locale, ...). SOURCE_DATE_EPOCH comes from
# debian/changelog like dpkg-buildpackage would set it. PYTHONHASHSEED=1 is
# what edksetup.sh exports anyway; set here too so it is explicit.
SDE=$(dpkg-parsechangelog -l debian/changelog -STimestamp)
BUILD_ENV=(
	HOME="$OVMF_BUILD_ROOT/home"
	PATH=/usr/bin:/bin:/usr/sbin:/sbin
	LANG=C
	LC_ALL=C
	TZ=UTC
	SOURCE_DATE_EPOCH="$SDE"
	PYTHON_COMMAND=/usr/bin/python3
	PYTHONHASHSEED=1
	PYTHONDONTWRITEBYTECODE=1
	TERM=dumb
)
# Runs "$@" inside the workspace after sourcing edksetup.sh. `set --` first:
# a sourced edksetup.sh would otherwise parse the caller's arguments.
in_edk2_env() {
	# shellcheck disable=SC2016 # expanded by the inner bash, on purpose
	env -i "${BUILD_ENV[@]}" /bin/bash -c '
		set -e
		cd "$1"; shift
		cmd=("$@")
		set --
		. ./edksetup.sh
		exec "${cmd[@]}"' in_edk2_env "$OVMF_WORKSPACE" "$@"
}

step 5 "BaseTools (make -C BaseTools, jobs=$JOBS)"
run_logged "building BaseTools" in_edk2_env make -C BaseTools ARCH=X64 -j"$JOBS"

step 6 "OVMF: build ${BUILD_ARGS[*]} -n $JOBS"
run_logged "building OVMF (2-3 min on 2 cores)" in_edk2_env build "${BUILD_ARGS[@]}" -n "$JOBS"
[[ -f $FV_OUT ]] || die "build finished but $FV_OUT is missing"

# --- 7. result -------------------------------------------------------------
step 7 "result -> $OUT_DIR"
install -m 0644 -- "$FV_OUT" "$OUT_DIR/OVMF.fd"
sha=$(sha256_of "$OUT_DIR/OVMF.fd")
size=$(size_of "$OUT_DIR/OVMF.fd")
pinned_sha=$(lock_field output 2)
pinned_size=$(lock_field output 3)

json_rc=0
/usr/bin/python3 "$OVMF_DIR/write-json.py" \
	--lock "$LOCK_FILE" --fd "$OUT_DIR/OVMF.fd" --out "$OUT_DIR/ovmf.json" \
	--build-dir "$OVMF_WORKSPACE" \
	--patch-list "$PATCH_LIST" --local-mods "$LOCAL_MODS" \
	--build-command "make -C BaseTools ARCH=X64; build ${BUILD_ARGS[*]}" \
	--environment "LANG=C" --environment "LC_ALL=C" --environment "TZ=UTC" \
	--environment "SOURCE_DATE_EPOCH=$SDE" --environment "PYTHONHASHSEED=1" \
	--environment "PYTHON_COMMAND=/usr/bin/python3" --environment "umask=022" ||
	json_rc=$?
if ((json_rc != 0)); then
	rm -f -- "$OUT_DIR/OVMF.fd" "$OUT_DIR/ovmf.json"
	die "OVMF.fd failed the SEV GUID check or ovmf.json could not be written"
fi
log "    SEV metadata + SEV hash table GUIDs present"

log "    OVMF.fd sha256 $sha size $size (total $((SECONDS - T0))s)"
if [[ $sha != "$pinned_sha" || $size != "$pinned_size" ]]; then
	{
		printf 'OVMF.fd does not match the pin in %s\n' "$LOCK_FILE"
		printf '  pinned: sha256 %s size %s\n' "$pinned_sha" "$pinned_size"
		printf '  built:  sha256 %s size %s\n' "$sha" "$size"
		printf 'If this change is intended (new inputs/toolchain), re-pin with:\n'
		printf '  output         OVMF.fd  %s  %s\n' "$sha" "$size"
		printf '(see ovmf/README.md; verify with OVMF_ALLOW_DRIFT=1 ovmf/check-reproducible.sh first)\n'
	} >&2
	if [[ ${OVMF_ALLOW_DRIFT:-0} == 1 ]]; then
		warn "OVMF_ALLOW_DRIFT=1: keeping the unpinned OVMF.fd"
	else
		mv -f -- "$OUT_DIR/OVMF.fd" "$OUT_DIR/OVMF.fd.unpinned"
		rm -f -- "$OUT_DIR/ovmf.json"
		trap - EXIT
		die "pinned OVMF.fd sha256 mismatch (result kept as $OUT_DIR/OVMF.fd.unpinned); set OVMF_ALLOW_DRIFT=1 only to re-pin"
	fi
else
	log "    matches the pinned sha256"
fi
# The 650 MB build tree is only needed to look into a failed build: drop it once the
# firmware is out (CI disks are not large; OVMF_KEEP_BUILD=1 keeps it).
if [[ ${OVMF_KEEP_BUILD:-0} != 1 ]]; then
	rm -rf -- "$OVMF_BUILD_ROOT"
fi
log "done: $OUT_DIR/OVMF.fd ($size bytes, sha256 $sha), $OUT_DIR/ovmf.json"
