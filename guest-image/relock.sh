#!/usr/bin/env bash
# `make relock`: re-pins the kernel to what Debian's archive serves now.
#   KERNEL_PACKAGE=<name>  pin that package (default: the one in inputs.lock; use
#                          KERNEL_PACKAGE=latest for the package linux-image-cloud-amd64
#                          currently depends on, i.e. a new kernel ABI).
# Uses a private apt state (own sources, lists, cache) with bookworm, bookworm-updates and
# bookworm-security; the machine's apt configuration is only read for proxies. Rewrites
# the kernel records of guest-image/inputs.lock, then says what to do next.
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

main=${KEYNET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${KEYNET_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
state="${KEYNET_CACHE_DIR:-$REPO_ROOT/out/cache}/relock-apt"
rm -rf -- "$state"
mkdir -p "$state"/{sources.list.d,apt.conf.d,lists/partial,cache/archives/partial}
cat >"$state/sources.list.d/keynet.sources" <<EOT
Types: deb
URIs: $main
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
{
	printf 'Dir::Etc::main "/dev/null";\nDir::Etc::Parts "%s";\n' "$state/apt.conf.d"
	apt-config dump 2>/dev/null | grep -E '^Acquire::(http|https|ftp)::Proxy' || true
	printf 'Acquire::Languages "none";\nAPT::Architecture "amd64";\n'
} >"$state/apt.conf"
APT_OPTS=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$state/sources.list.d"
	-o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$state/apt.conf.d"
	-o "Dir::State::Lists=$state/lists" -o "Dir::State::status=/dev/null"
	-o "Dir::Cache=$state/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
apt_get() { env "APT_CONFIG=$state/apt.conf" LC_ALL=C apt-get -q "${APT_OPTS[@]}" "$@"; }
apt_cache() { env "APT_CONFIG=$state/apt.conf" LC_ALL=C apt-cache "${APT_OPTS[@]}" "$@"; }

step "relock: apt-get update (private state: bookworm, bookworm-updates, bookworm-security)"
# Error-Mode=any: an unreachable suite (bookworm-security, say) must stop the relock, not
# leave apt exiting 0 with a W: line and the newest kernel of the suites that answered
# pinned; the log check (shared with the firmware fetch) keeps every other warning fatal.
# shellcheck source=ovmf/apt-update-log.sh
. "$REPO_ROOT/ovmf/apt-update-log.sh"
if ! apt_get -o APT::Update::Error-Mode=any update >"$state/update.log" 2>&1 ||
	! apt_update_log_ok "$state/update.log"; then
	cat "$state/update.log" >&2
	die "apt-get update failed"
fi

pkg=${KERNEL_PACKAGE:-$(lock kernel-package)}
if [[ $pkg == latest ]]; then
	signed=$(apt_cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[[ -n $signed ]] || die "cannot tell which kernel linux-image-cloud-amd64 depends on"
	pkg="$signed-unsigned"
fi
step "relock: asking the archive for $pkg"
line=$(apt_get --print-uris download "$pkg" 2>"$state/download.err" | grep "^'") ||
	{ cat "$state/download.err" >&2; die "$pkg is not in the archive"; }
url=$(awk '{ gsub(/'\''/, "", $1); print $1 }' <<<"$line")
file=$(awk '{ print $2 }' <<<"$line")
size=$(awk '{ print $3 }' <<<"$line")
sha=$(awk '{ sub(/^SHA256:/, "", $4); print $4 }' <<<"$line")
[[ $sha =~ ^[0-9a-f]{64}$ ]] || die "the archive gave no SHA256 for $file"
version=$(apt_cache show "$pkg" | awk '/^Version:/ { print $2; exit }')
source=$(apt_cache show "$pkg" | awk '/^Source:/ { print $2; exit }')
source=${source:-linux}
mkdir -p "$GI_CACHE"
step "relock: downloading $url"
curl -fL --retry 3 --progress-bar -o "$GI_CACHE/$file.part" -- "$url"
[[ $(sha256 "$GI_CACHE/$file.part") == "$sha" ]] || die "downloaded $file does not match the archive's SHA256"
mv -f -- "$GI_CACHE/$file.part" "$GI_CACHE/$file"
x="$state/x"
dpkg-deb -x "$GI_CACHE/$file" "$x"
vmlinuz=$(find "$x/boot" -name 'vmlinuz-*' | head -n1)
[[ -n $vmlinuz ]] || die "$file has no boot/vmlinuz-*"
release=${vmlinuz##*/vmlinuz-}

python3 - "$GI_LOCK" "$pkg" "$version" "$source" "$release" "$file" "$sha" "$size" \
	"$(sha256 "$vmlinuz")" "$(stat -c %s "$vmlinuz")" <<'PY'
import re, sys
path, pkg, ver, src, rel, f, sha, size, vsha, vsize = sys.argv[1:]
new = {"kernel-package": pkg, "kernel-version": ver, "kernel-source": src, "kernel-release": rel,
       "kernel-deb": f"{f} {sha} {size}", "vmlinuz": f"{vsha} {vsize}"}
out = []
for line in open(path):
    key = line.split()[0] if line.strip() and not line.lstrip().startswith("#") else None
    if key in new:
        line = f"{key:<15} {new.pop(key)}\n"
    out.append(line)
if new:
    sys.exit(f"inputs.lock lacks records: {', '.join(new)}")
open(path, "w").write("".join(out))
PY
step "relock: pinned $pkg $version (sha256 $sha), vmlinuz $release"
git -C "$REPO_ROOT" --no-pager diff --stat -- guest-image/inputs.lock 2>/dev/null || true
cat >&2 <<EOT
Next: review the change (git diff guest-image/inputs.lock), check the kernel still has
what modules.list needs, then 'make image', 'make boot-test' and 'make publish'.
EOT
