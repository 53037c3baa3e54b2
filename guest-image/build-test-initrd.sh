#!/usr/bin/env bash
# The boot test's initramfs, out/image-test/initrd.img: the published image's init and
# kernel modules with a keynode built WITH the simulated platform (--features
# simulated, on keynode). Never published: booted with the test command line
# (keynet.simulated=1) its launch digest differs from every published one, and the
# published image's keynode has no simulated platform at all. Needs `make image` first.
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

WORK=out/image-build
OUT=out/image-test
release=$(lock kernel-release)
modules="$WORK/kernel/lib/modules/$release"
[[ -d $modules ]] || die "$modules missing: run 'make image' first"

step "test image: keynode WITH the simulated platform (static; same init and modules)"
# The image's target directory: the dependencies shared with the published keynode are
# built once, and cargo keeps both feature sets side by side.
bin=$(build_static "$WORK/target" --features simulated)
mkdir -p "$OUT"
# Copied at once: the next image build links the published keynode at the same path.
cp -f -- "$bin/keynode" "$OUT/keynode"
cp -f -- "$bin/init" "$OUT/init"
cargo build --release --locked -q -p keynet-mkimage
target/release/keynet-mkimage initrd --init "$OUT/init" --keynode "$OUT/keynode" \
	--modules-dir "$modules" --kernel-release "$release" \
	--modules-list "$GI_DIR/modules.list" --out "$OUT/initrd.img" --order-out "$OUT/modules.order"
printf 'test initrd.img: %s bytes (keynode %s bytes)\n' \
	"$(stat -c %s "$OUT/initrd.img")" "$(stat -c %s "$OUT/keynode")"
