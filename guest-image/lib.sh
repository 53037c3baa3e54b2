# shellcheck shell=bash
# Shared helpers of the guest-image/*.sh scripts. Source it, do not execute it.
# shellcheck disable=SC2034

GI_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$GI_DIR/.." && pwd -P)
GI_LOCK="$GI_DIR/inputs.lock"
# Downloads survive `make clean`; KEYNET_CACHE_DIR lets a second checkout share them.
GI_CACHE="${KEYNET_CACHE_DIR:-$REPO_ROOT/out/cache}/kernel"

step() { printf '==> [image] %s\n' "$*" >&2; }
die() {
	printf 'ERROR [image]: %s\n' "$@" >&2
	exit 1
}

# lock KEY [N]: field N (1-based, default 1) of record KEY in guest-image/inputs.lock.
lock() {
	local key=$1 n=${2:-1} v
	v=$(awk -v key="$key" -v n="$n" '{ sub(/#.*/, "") } $1 == key { print $(n + 1); exit }' "$GI_LOCK")
	[[ -n $v ]] || die "guest-image/inputs.lock: record '$key' has no field $n"
	printf '%s\n' "$v"
}

sha256() { sha256sum -- "$1" | cut -d' ' -f1; }

# build_static TARGET_DIR [CARGO ARGS...]: keynode and init, statically linked and
# reproducible (--locked, the pinned toolchain, no build ID, the checkout and cargo paths
# remapped, SOURCE_DATE_EPOCH=0), for x86_64-unknown-linux-gnu, into TARGET_DIR. Extra
# arguments go to cargo (the boot test image adds --features simulated). Prints
# the directory holding the two binaries, after checking neither has a program interpreter.
build_static() {
	local target_dir=$1
	shift
	local triple=x86_64-unknown-linux-gnu cargo_home=${CARGO_HOME:-$HOME/.cargo} sep=$'\x1f'
	# --target keeps these flags off build scripts and proc macros; the remaps take the
	# checkout and cargo home paths out of panic messages and C __FILE__ strings.
	# shellcheck disable=SC2054 # the commas are part of one linker argument
	local flags=(-C target-feature=+crt-static -C link-arg=-Wl,--build-id=none -C strip=symbols
		"--remap-path-prefix=$REPO_ROOT=/keynet" "--remap-path-prefix=$cargo_home=/cargo")
	local bin="$target_dir/$triple/release" b
	# A binary left from an earlier build (of either feature set) must never be taken for
	# this one's, whatever happens below.
	rm -f -- "$bin/keynode" "$bin/init"
	(
		CARGO_ENCODED_RUSTFLAGS=$(IFS=$sep; printf '%s' "${flags[*]}")
		export CARGO_ENCODED_RUSTFLAGS
		export CFLAGS_x86_64_unknown_linux_gnu="-ffile-prefix-map=$REPO_ROOT=/keynet -ffile-prefix-map=$cargo_home=/cargo"
		export SOURCE_DATE_EPOCH=0
		cargo build --release --locked --target "$triple" --target-dir "$target_dir" \
			-p keynode --bin keynode -p keynet-init --bin init "$@" >&2
	) || die "cargo build of keynode and init failed"
	for b in keynode init; do
		[[ -x $bin/$b ]] || die "the build left no $bin/$b"
		# A program interpreter (ld.so) means dynamic linking: the initramfs has no libc.
		! readelf -lW "$bin/$b" | grep -q 'INTERP' || die "$b is not statically linked"
	done
	printf '%s\n' "$bin"
}

# refuses_simulation KEYNODE WORKDIR: the keynode binary refuses the simulated platform
# (provider and trusted simulated peer roots) as a configuration error (exit 2), as the
# published image's keynode must; dies otherwise.
refuses_simulation() {
	local keynode=$1 work=$2 rc out
	mkdir -p "$work"
	local base="[node]
listen = \"127.0.0.1:7000\"
endpoint = \"127.0.0.1:7000\"
state_dir = \"$work/state\"
[registry]
file = \"$work/none.json\"
authority = \"0x0000000000000000000000000000000000000001\""
	printf '%s\n[evidence]\nprovider = "simulated"\nsimulated_state = "%s/none.json"\n' \
		"$base" "$work" >"$work/wants-simulation.toml"
	printf '%s\n[evidence]\nprovider = "auto"\n[peers]\ntrust_simulated = "%s/none.pem"\n' \
		"$base" "$work" >"$work/trusts-simulation.toml"
	for cfg in wants-simulation trusts-simulation; do
		rc=0
		out=$("$keynode" run --config "$work/$cfg.toml" 2>&1) || rc=$?
		((rc == 2)) || die "$keynode: $cfg.toml: exit $rc, expected 2: $out"
		[[ $out == *"this keynode build has no simulated platform"* ]] ||
			die "$keynode: $cfg.toml: not refused for want of a simulated platform: $out"
		printf '  ok  %s: %s\n' "$cfg" "$out" >&2
	done
}
