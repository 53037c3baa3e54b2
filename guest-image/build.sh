#!/usr/bin/env bash
# `make image`: the Keynet guest image from pinned inputs, into out/image/:
#   OVMF.fd  vmlinuz  initrd.img  cmdline  image.json  manifest.json
# Every step says what it does; nothing of this machine (time, path, user) reaches an
# artifact. KEYNET_OVMF=FILE uses an already built firmware (it must match the pin).
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

OUT=out/image
WORK=out/image-build
release=$(lock kernel-release)
version=$(lock image-version)

step "1/7 build dependencies"
"$GI_DIR/deps.sh"

step "2/7 firmware: OVMF (AmdSev) from pinned edk2 source"
ovmf=${KEYNET_OVMF:-out/ovmf/OVMF.fd}
if [[ -z ${KEYNET_OVMF:-} ]]; then
	make --no-print-directory ovmf
fi
ovmf_want=$(awk '{ sub(/#.*/, "") } $1 == "output" { print $3 }' ovmf/inputs.lock)
[[ $(sha256 "$ovmf") == "$ovmf_want" ]] || die "$ovmf is not the pinned OVMF.fd ($ovmf_want)"

step "3/7 kernel: $(lock kernel-package) $(lock kernel-version)"
deb=$("$GI_DIR/fetch-kernel.sh")
rm -rf -- "$WORK/kernel"
mkdir -p "$WORK/kernel"
dpkg-deb -x "$deb" "$WORK/kernel"
vmlinuz="$WORK/kernel/boot/vmlinuz-$release"
[[ -f $vmlinuz ]] || die "the package has no boot/vmlinuz-$release (is kernel-release right?)"
[[ $(sha256 "$vmlinuz") == "$(lock vmlinuz 1)" && $(stat -c %s "$vmlinuz") == "$(lock vmlinuz 2)" ]] ||
	die "vmlinuz in the package is not the pinned one (sha256 $(sha256 "$vmlinuz"))"
# Init has no modprobe; the load order comes from this modules.dep (only read, never
# shipped).
depmod -b "$WORK/kernel" "$release"

step "4/7 keynode + init: static, reproducible (rustc $(lock rust-toolchain), --locked, no simulated platform)"
bin=$(build_static "$WORK/target")
refuses_simulation "$bin/keynode" "$WORK/simulation-check"

step "5/7 initramfs: sorted newc cpio, mtime 0, owner 0:0, gzip -9 without timestamp"
cargo build --release --locked -q -p keynet-mkimage
mk=target/release/keynet-mkimage
mkdir -p "$OUT"
"$mk" initrd --init "$bin/init" --keynode "$bin/keynode" \
	--modules-dir "$WORK/kernel/lib/modules/$release" --kernel-release "$release" \
	--modules-list "$GI_DIR/modules.list" --out "$OUT/initrd.img" --order-out "$WORK/modules.order"

step "6/7 image files"
cp -f -- "$ovmf" "$OUT/OVMF.fd"
cp -f -- "$vmlinuz" "$OUT/vmlinuz"
# The measured command line: one line, no newline (QEMU hashes exactly these bytes + NUL).
tr -d '\n' <"$GI_DIR/cmdline" >"$OUT/cmdline"
chmod 0644 "$OUT"/*

step "7/7 build record and SNP launch digests (snp-measure library)"
# The source tree: tracked files as they are now, without the published records (which
# are written from this build).
tree_sha=$("$GI_DIR/source-sha256.sh")
components=(--component "keynode=$bin/keynode" --component "init=$bin/init")
while IFS= read -r m; do
	components+=(--component "modules/$m=$WORK/kernel/lib/modules/$release/$m")
done <"$WORK/modules.order"
"$mk" record --image-dir "$OUT" --lock "$GI_LOCK" --ovmf-lock ovmf/inputs.lock \
	--cargo-lock Cargo.lock --source-sha256 "$tree_sha" "${components[@]}" \
	--tool "rustc=$(rustc -V)" --tool "cargo=$(cargo -V)" --tool "cc=$(cc --version | head -n1)" \
	--tool "ld=$(ld --version | head -n1)" --tool "libc6-dev=$(dpkg-query -W -f='${Version}' libc6-dev)" \
	--out "$OUT/image.json" --manifest-out "$OUT/manifest.json"

echo
( cd "$OUT" && sha256sum OVMF.fd vmlinuz initrd.img cmdline )
printf 'initrd.img: %s bytes\n' "$(stat -c %s "$OUT/initrd.img")"
published="measurements/published/$version.image.json"
if [[ -f $published ]]; then
	if "$mk" compare --ours "$OUT/image.json" --published "$published" >"$WORK/compare.txt"; then
		step "image equals the published $published"
	else
		cat "$WORK/compare.txt"
		printf 'WARNING [image]: this build differs from %s.\n' "$published" >&2
		printf '  If the change is intended, publish it: make publish\n' >&2
	fi
else
	printf 'WARNING [image]: nothing published for %s yet: make publish\n' "$version" >&2
fi
