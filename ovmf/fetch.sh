#!/usr/bin/env bash
# Obtain the pinned edk2 source tarballs into the cache dir, verified against
# the sha256 pinned in ovmf/inputs.lock. If the cache already holds files with
# the right hashes, nothing touches the network.
#
# Download path: a PRIVATE apt state under the cache dir (own sources, lists,
# cache, config) with a deb-src entry for the pinned suite on the machine's
# own Debian mirror (derived from its apt configuration at run time), used
# only to ask apt for the tarball URLs (`apt-get --print-uris source`). The
# files are then downloaded with curl. The machine's /etc/apt is only read.
set -euo pipefail

# shellcheck source=ovmf/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

SRC_PKG=$(lock_field source-package 1)
SRC_VER=$(lock_field source-version 1)
SRC_SUITE=$(lock_field source-suite 1)
FILES=("$(lock_field orig-tarball 1)" "$(lock_field debian-tarball 1)")
SHAS=("$(lock_field orig-tarball 2)" "$(lock_field debian-tarball 2)")

repin_hint() {
	cat >&2 <<EOF
To re-pin (only after deciding the new upstream/Debian version is wanted):
  1. pick the version:  apt-cache showsrc $SRC_PKG   (with a deb-src $SRC_SUITE entry)
  2. update source-version / orig-tarball / debian-tarball in ovmf/inputs.lock
     with the file names and SHA256 values from the new .dsc / Sources index,
  3. run OVMF_ALLOW_DRIFT=1 ovmf/check-reproducible.sh and pin the new OVMF.fd
     sha256 and size in the 'output' record. See ovmf/README.md.
EOF
}

mkdir -p "$OVMF_CACHE_DIR"

# --- 1. what is already cached and valid? -------------------------------
need=()
for i in "${!FILES[@]}"; do
	f="$OVMF_CACHE_DIR/${FILES[$i]}"
	if [[ -f $f ]]; then
		actual=$(sha256_of "$f")
		if [[ $actual == "${SHAS[$i]}" ]]; then
			log "fetch: cached and verified: ${FILES[$i]} (sha256 ${SHAS[$i]})"
			continue
		fi
		warn "cached ${FILES[$i]} has sha256 $actual, expected ${SHAS[$i]}; re-downloading"
		rm -f -- "$f"
	fi
	need+=("$i")
done
((${#need[@]} == 0)) && exit 0

# --- 2. derive the Debian mirror from the machine's apt configuration ----
# First enabled, non-security http(s)/ftp entry, in apt's reading order
# (sources.list, then sources.list.d/*.list|*.sources sorted). Handles both
# one-line and deb822 formats. OVMF_DEBIAN_MIRROR overrides.
derive_mirror() {
	local files=() f
	[[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
	while IFS= read -r f; do
		files+=("$f")
	done < <(find /etc/apt/sources.list.d -maxdepth 1 -type f \
		\( -name '*.list' -o -name '*.sources' \) 2>/dev/null | LC_ALL=C sort)
	for f in "${files[@]}"; do
		if [[ $f == *.sources ]]; then
			# deb822: stanzas separated by blank lines.
			awk '
				function flush() {
					if (uri != "" && enabled != "no" && types ~ /(^|[ \t])deb(-src)?([ \t]|$)/ \
					    && suites !~ /-security/ && uri !~ /security/) { print uri; done = 1; exit }
					uri = ""; types = ""; suites = ""; enabled = ""
				}
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { flush(); next }
				{
					line = $0; key = tolower($1); sub(/^[^:]*:[ \t]*/, "", line)
					if (key == "uris:") { nu = split(line, u, /[ \t]+/); for (k = 1; k <= nu; k++) if (u[k] ~ /^(https?|ftp):\/\//) { uri = u[k]; break } }
					else if (key == "types:") types = line
					else if (key == "suites:") suites = line
					else if (key == "enabled:") enabled = tolower(line)
				}
				END { if (!done) flush() }' "$f"
		else
			# one-line: deb [options] URI suite components...
			awk '
				/^[ \t]*deb(-src)?[ \t]/ {
					sub(/^[ \t]*deb(-src)?[ \t]+/, ""); sub(/^\[[^]]*\][ \t]*/, "")
					if ($1 ~ /^(https?|ftp):\/\// && $2 !~ /-security/ && $1 !~ /security/) { print $1; exit }
				}' "$f"
		fi | head -n 1
	done | head -n 1
}

MIRROR=${OVMF_DEBIAN_MIRROR:-$(derive_mirror)}
MIRROR=${MIRROR%/}
[[ -n $MIRROR ]] ||
	die "could not derive a Debian mirror from /etc/apt/sources.list{,.d/}; set OVMF_DEBIAN_MIRROR=http://<mirror>/debian"
log "fetch: Debian mirror (from the machine's apt config): $MIRROR"

# --- 3. private apt state --------------------------------------------------
APT_STATE="$OVMF_CACHE_DIR/apt"
rm -rf -- "$APT_STATE"
mkdir -p "$APT_STATE"/{apt.conf.d,preferences.d,sources.list.d,lists/partial,cache/archives/partial}

# The InRelease of trixie is signed by the Debian 12 (bookworm) archive key
# as well as the Debian 13 keys, so bookworm's debian-archive-keyring
# verifies it and we keep signature checking ON. OVMF_APT_TRUSTED=1 switches
# this private, source-only state to [trusted=yes] (e.g. for a host whose
# keyring cannot verify the suite); that is acceptable ONLY because apt is
# used here just to learn URLs and every downloaded file is verified against
# the sha256 pinned in inputs.lock before use.
if [[ ${OVMF_APT_TRUSTED:-0} == 1 ]]; then
	warn "OVMF_APT_TRUSTED=1: Release signature NOT checked; integrity rests on the pinned sha256"
	trust_line="Trusted: yes"
else
	trust_line="Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
fi
cat >"$APT_STATE/sources.list.d/keynet-ovmf.sources" <<EOF
Types: deb-src
URIs: $MIRROR
Suites: $SRC_SUITE
Components: main
$trust_line
EOF

# Our own apt.conf (APT_CONFIG is read before anything else): ignore the
# machine's apt.conf.d (no update hooks, pinning, ...) but inherit its
# network settings (Acquire::*, e.g. proxies). The Dir::* locations are
# passed explicitly with -o below.
{
	printf 'Dir::Etc::main "/dev/null";\n'
	printf 'Dir::Etc::Parts "%s";\n' "$APT_STATE/apt.conf.d"
	apt-config dump 2>/dev/null | grep -E '^Acquire::' |
		grep -vE '^Acquire::(IndexTargets|cdrom|Languages)' || true
	printf 'Acquire::Languages "none";\n'
} >"$APT_STATE/apt.conf"

APT=(env "APT_CONFIG=$APT_STATE/apt.conf" LC_ALL=C apt-get -q
	-o "Dir::Etc::SourceList=/dev/null"
	-o "Dir::Etc::SourceParts=$APT_STATE/sources.list.d"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=$APT_STATE/preferences.d"
	-o "Dir::State::Lists=$APT_STATE/lists"
	-o "Dir::State::status=/dev/null"
	-o "Dir::Cache=$APT_STATE/cache"
	-o "Dir::Cache::pkgcache="
	-o "Dir::Cache::srcpkgcache=")

log "fetch: apt-get update (private state, deb-src $SRC_SUITE main)"
# Fails on a non-zero exit, any E:/Err: line and any warning that is not
# known to be benign (allow-list in apt-update-log.sh: signature and
# fetch failures never pass). Benign warnings are shown as notes: notably, a
# checkout under a directory apt's sandbox user _apt cannot traverse (/root
# with mode 0700, a `mktemp -d` folder) makes apt warn "Download is performed
# unsandboxed as root ..." and download as root, which is fine.
# We do NOT set APT::Sandbox::User "root" to avoid that warning: apt keeps its
# _apt sandbox wherever it can reach the state (the usual case) and only falls
# back to root where it cannot; forcing root would drop that separation for
# every checkout just to silence a note.
# APT::Update::Error-Mode=any (apt >= 1.9.11; an unknown option to older apt)
# makes apt exit non-zero on "transient" fetch failures too, which it
# otherwise reports only with W: lines and exit status 0 (e.g. a mirror that
# cannot be resolved); the log check catches those either way.
update_rc=0
"${APT[@]}" -o APT::Update::Error-Mode=any update >"$APT_STATE/update.log" 2>&1 || update_rc=$?
log_rc=0
apt_update_log_ok "$APT_STATE/update.log" || log_rc=$?
if ((update_rc != 0 || log_rc != 0)); then
	cat "$APT_STATE/update.log" >&2
	hint=()
	if grep -qiE 'GPG error|NO_PUBKEY|EXPKEYSIG|BADSIG|signature' "$APT_STATE/update.log"; then
		hint=("If the Release signature cannot be verified on this host, OVMF_APT_TRUSTED=1 may be used (integrity then rests on the pinned sha256).")
	fi
	die "apt-get update of the private $SRC_SUITE deb-src state failed (exit status $update_rc; see above)." \
		${hint[@]+"${hint[@]}"}
fi

log "fetch: asking apt for the URLs of $SRC_PKG=$SRC_VER"
# The .dsc itself may 404 on the mirror, so never `apt-get source` (it would
# fetch the .dsc too); just learn the URLs and download the tarballs.
if ! uris=$("${APT[@]}" --print-uris source "$SRC_PKG=$SRC_VER" 2>"$APT_STATE/source.log"); then
	cat "$APT_STATE/source.log" >&2
	printf 'ERROR [ovmf]: %s=%s is not available from %s %s (superseded or removed?).\n' \
		"$SRC_PKG" "$SRC_VER" "$MIRROR" "$SRC_SUITE" >&2
	repin_hint
	exit 1
fi

# --- 4. download + verify --------------------------------------------------
for i in "${need[@]}"; do
	name=${FILES[$i]} want=${SHAS[$i]}
	# Lines look like: 'URL' NAME SIZE SHA256:HEX
	line=$(awk -v n="$name" '$1 ~ /^'\''/ && $2 == n { print; exit }' <<<"$uris")
	if [[ -z $line ]]; then
		printf 'ERROR [ovmf]: %s is not part of %s=%s in %s %s.\n' "$name" "$SRC_PKG" "$SRC_VER" "$MIRROR" "$SRC_SUITE" >&2
		repin_hint
		exit 1
	fi
	url=$(awk '{ gsub(/'\''/, "", $1); print $1 }' <<<"$line")
	archive_sha=$(awk '{ sub(/^SHA256:/, "", $4); print $4 }' <<<"$line")
	if [[ $archive_sha != "$want" ]]; then
		printf 'ERROR [ovmf]: the archive lists %s with a different hash:\n  expected (pinned): %s\n  archive index:     %s\n' \
			"$name" "$want" "$archive_sha" >&2
		repin_hint
		exit 1
	fi
	log "fetch: downloading $url"
	tmp="$OVMF_CACHE_DIR/.$name.part"
	rm -f -- "$tmp"
	if ! curl -fsSL --retry 3 --connect-timeout 30 -o "$tmp" -- "$url"; then
		rm -f -- "$tmp"
		printf 'ERROR [ovmf]: could not download %s from %s\n' "$name" "$url" >&2
		repin_hint
		exit 1
	fi
	actual=$(sha256_of "$tmp")
	if [[ $actual != "$want" ]]; then
		rm -f -- "$tmp"
		printf 'ERROR [ovmf]: sha256 mismatch for %s\n  expected (pinned): %s\n  actual:            %s\n' \
			"$name" "$want" "$actual" >&2
		repin_hint
		exit 1
	fi
	mv -f -- "$tmp" "$OVMF_CACHE_DIR/$name"
	log "fetch: verified $name (sha256 $actual)"
done
