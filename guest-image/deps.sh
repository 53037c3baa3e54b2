#!/usr/bin/env bash
# Installs the Debian packages the image build and its tests need, only if missing.
#   kmod            depmod: module dependency order of the pinned kernel
#   dpkg            dpkg-deb: unpacking the kernel package (always on Debian)
#   curl, ca-certificates  downloading the pinned kernel package
#   build-essential gcc for the C parts of crates (ring), static glibc (libc6-dev)
#   git             listing the source tree the image is built from
#   cpio            tests: GNU cpio reads back our initramfs (a reference reader)
#   qemu-system-x86, ovmf  boot tests (TCG) with Debian's generic firmware
#   libfaketime     node tests and the soak: a live node whose clock runs ahead of the others
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(build-essential ca-certificates cpio curl git kmod libfaketime ovmf qemu-system-x86)
missing=()
for p in "${PACKAGES[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) == installed ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
step "installing Debian packages: ${missing[*]}"
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || die "not root and no sudo; please install: ${missing[*]}"
	sudo=(sudo)
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
