#!/usr/bin/env bash
# Obtains the pinned kernel package into the cache, verified against the sha256 in
# guest-image/inputs.lock; a cached file with the right hash never touches the network.
# A package that can no longer be fetched stops the build: never a different kernel.
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

file=$(lock kernel-deb 1)
want=$(lock kernel-deb 2)
src=$(lock kernel-source)
mkdir -p "$GI_CACHE"
deb="$GI_CACHE/$file"
if [[ -f $deb && $(sha256 "$deb") == "$want" ]]; then
	step "kernel package cached and verified: $file"
	printf '%s\n' "$deb"
	exit 0
fi

# The security archive serves it until a point release moves it to the main archive.
main=${KEYNET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${KEYNET_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
enc=$(sed -e 's/+/%2b/g' -e 's/~/%7e/g' <<<"$file")
urls=("$security/pool/updates/main/${src:0:1}/$src/$enc" "$main/pool/main/${src:0:1}/$src/$enc")
tmp="$deb.part"
for url in "${urls[@]}"; do
	step "downloading $url"
	if curl -fL --retry 3 --connect-timeout 30 --progress-bar -o "$tmp" -- "$url"; then
		got=$(sha256 "$tmp")
		if [[ $got == "$want" ]]; then
			mv -f -- "$tmp" "$deb"
			step "verified $file (sha256 $got)"
			printf '%s\n' "$deb"
			exit 0
		fi
		rm -f -- "$tmp"
		die "$file from $url has sha256 $got, pinned $want: refusing it" \
			"If Debian really republished it, re-pin with 'make relock' and review the change."
	fi
done
rm -f -- "$tmp"
die "the pinned kernel package $file (sha256 $want) can no longer be fetched from" \
	"  ${urls[*]}" \
	"It was probably superseded. Re-pin to the current one with 'make relock'" \
	"(then review guest-image/inputs.lock, rebuild with 'make image' and publish with 'make publish')."
