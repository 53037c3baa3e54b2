#!/usr/bin/env bash
# Install the Debian packages needed to fetch and build OVMF, only if missing.
# A machine that already has them never touches apt.
set -euo pipefail

# shellcheck source=ovmf/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# What each package is for:
#   build-essential  gcc/g++/make/libc-dev (edk2 + BaseTools C tools; VfrCompile is C++)
#   dpkg-dev         dpkg-parsechangelog (SOURCE_DATE_EPOCH from debian/changelog)
#   uuid-dev         libuuid headers for BaseTools
#   nasm             edk2 .nasm sources
#   acpica-tools     iasl, compiles OVMF's ACPI tables (.asl)
#   python3          edk2 build system (BaseTools/Source/Python)
#   xz-utils         unpacking the *.tar.xz sources
#   patch            applying debian/patches/series
#   curl, ca-certificates  downloading the pinned tarballs (ovmf/fetch.sh)
#   binutils         ld/objcopy used by the GCC5 toolchain (listed for clarity)
PACKAGES=(
	acpica-tools
	binutils
	build-essential
	ca-certificates
	curl
	dpkg-dev
	make
	nasm
	patch
	python3
	uuid-dev
	xz-utils
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	log "deps: all ${#PACKAGES[@]} build packages already installed"
	exit 0
fi

log "deps: missing packages: ${missing[*]}"
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 ||
		die "not root and no sudo; please install: ${missing[*]}"
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
log "deps: apt-get update"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
log "deps: apt-get install ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"

for pkg in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[[ $status == installed ]] || die "package $pkg still not installed"
done
log "deps: done"
