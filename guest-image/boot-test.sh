#!/usr/bin/env bash
# `make boot-test`: boots the exact out/image/{vmlinuz,initrd.img,cmdline} under QEMU.
# There is no SEV-SNP here and the AmdSev OVMF refuses to boot without SEV, so the boots
# use Debian's generic OVMF (TCG; KVM only if KEYNET_KVM=1 and /dev/kvm really works).
#
#   0. the published image's keynode (taken out of its initrd) has no simulated platform:
#      it refuses provider = "simulated" whatever the command line, and has no
#      dev-network command.
#   1. the published image: init mounts, loads its modules (sev-guest: ENODEV), starts
#      keynode, keynode finds no SNP platform and refuses to serve, the VM powers off.
#   2. a test image: the same kernel and init with a keynode built with the simulated
#      platform (guest-image/build-test-initrd.sh) and the test-only command-line flag
#      keynet.simulated=1 (another initrd and command line, so another digest: such a guest
#      can never pass for the published one). The host hands a simulated platform that
#      reports that test digest; `keynet attest` verifies the node end to end through a
#      forwarded port, then an ACPI power-button press shuts it down cleanly.
set -euo pipefail
# shellcheck source=guest-image/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

IMG=out/image
WORK=$(mktemp -d /tmp/keynet-boot-test.XXXXXX)
TIMEOUT=${KEYNET_BOOT_TIMEOUT:-600}
QEMU_PID=
cleanup() {
	if [[ -n $QEMU_PID ]]; then kill "$QEMU_PID" 2>/dev/null || true; fi
	[[ ${KEEP:-0} == 1 ]] || rm -rf -- "$WORK"
}
trap cleanup EXIT

for f in vmlinuz initrd.img cmdline; do
	[[ -f $IMG/$f ]] || die "$IMG/$f missing: run 'make image' first"
done
"$GI_DIR/deps.sh"
firmware=/usr/share/ovmf/OVMF.fd
[[ -f $firmware ]] || die "$firmware missing (Debian package ovmf)"
accel=tcg
if [[ ${KEYNET_KVM:-0} == 1 && -w /dev/kvm ]]; then accel=kvm; fi
cmdline=$(cat "$IMG/cmdline")

step "host tools: keynode (dev-network, simulated platform), keynet (client), snp-measure"
cargo build --locked -q -p keynode --features simulated
cargo build --locked -q -p keynet -p snp-measure
bin=target/debug
"$GI_DIR/build-test-initrd.sh"
TEST_INITRD=out/image-test/initrd.img

fail() {
	printf 'BOOT TEST FAILED: %s\n' "$1" >&2
	[[ -f ${2:-} ]] && { echo "---- console ----" >&2; tail -n 60 "$2" >&2; }
	exit 1
}

# boot NAME INITRD APPEND [QEMU ARGS...]: starts the VM in the background, console to
# $WORK/NAME.log.
boot() {
	local name=$1 initrd=$2 append=$3
	shift 3
	qemu-system-x86_64 -machine q35 -accel "$accel" -cpu max -m 1024 -smp 2 \
		-nographic -no-reboot -bios "$firmware" \
		-kernel "$IMG/vmlinuz" -initrd "$initrd" -append "$append" \
		-chardev "socket,id=mon,path=$WORK/$name.mon,server=on,wait=off" -mon chardev=mon \
		"$@" </dev/null >"$WORK/$name.log" 2>&1 &
	QEMU_PID=$!
	BOOT_START=$(date +%s.%N)
}

# wait_for NAME REGEX: waits until the console shows REGEX; prints seconds since boot.
wait_for() {
	local name=$1 re=$2 deadline=$((SECONDS + TIMEOUT))
	until grep -aqE "$re" "$WORK/$name.log"; do
		if ! kill -0 "$QEMU_PID" 2>/dev/null; then fail "$name: VM ended before '$re'" "$WORK/$name.log"; fi
		((SECONDS < deadline)) || fail "$name: no '$re' within ${TIMEOUT}s" "$WORK/$name.log"
		sleep 0.2
	done
	awk -v s="$BOOT_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'
}

# wait_exit NAME: waits for QEMU to exit (the guest powered off) and checks it exited 0.
wait_exit() {
	local name=$1 deadline=$((SECONDS + TIMEOUT))
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		((SECONDS < deadline)) || fail "$name: VM did not power off within ${TIMEOUT}s" "$WORK/$name.log"
		sleep 0.2
	done
	local rc=0
	wait "$QEMU_PID" || rc=$?
	QEMU_PID=
	((rc == 0)) || fail "$name: QEMU exited with $rc" "$WORK/$name.log"
}

expect() {
	local name=$1 re=$2
	grep -aqE "$re" "$WORK/$name.log" || fail "$name: console lacks '$re'" "$WORK/$name.log"
	printf '  ok  %s\n' "$(grep -aE -m1 "$re" "$WORK/$name.log" | tr -d '\r')"
}

# ---- 0: the published keynode cannot simulate -------------------------------------------
step "0: the published image's keynode has no simulated platform"
mkdir -p "$WORK/published"
gzip -dc "$IMG/initrd.img" | (cd "$WORK/published" && cpio -i --quiet --make-directories bin/keynode)
published_keynode="$WORK/published/bin/keynode"
[[ -x $published_keynode ]] || fail "no bin/keynode in $IMG/initrd.img"
refuses_simulation "$published_keynode" "$WORK/published-check"
rc=0
"$published_keynode" dev-network --dir "$WORK/devnet" >"$WORK/published.out" 2>&1 || rc=$?
((rc == 2)) || fail "the published keynode has a dev-network command (exit $rc)" "$WORK/published.out"
printf '  ok  no dev-network command (exit 2: %s)\n' "$(head -n1 "$WORK/published.out")"

# ---- 1: the published image on a machine without SEV-SNP -------------------------------
step "boot 1/2: published image, no SEV-SNP platform ($accel)"
cat >"$WORK/node.toml" <<EOT
[node]
listen = "0.0.0.0:7000"
endpoint = "node.example:7000"
state_dir = "/run/keynet/state"
[evidence]
provider = "auto"
[registry]
url = "https://registry.example/registry.json"
authority = "0x0000000000000000000000000000000000000001"
[peers]
manifest = "/run/keynet/host/manifest.json"
[network]
address = "10.0.2.15/24"
gateway = "10.0.2.2"
EOT
boot plain "$IMG/initrd.img" "$cmdline" -fw_cfg "name=opt/keynet/config,file=$WORK/node.toml" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0
t_refuse=$(wait_for plain 'keynet-init: keynode refuses to serve')
wait_exit plain
t_off=$(awk -v s="$BOOT_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }')
for re in 'keynet-init: mounted /proc /sys /dev /run /tmp' \
	'keynet-init: module configfs: loaded' \
	'keynet-init: module sev-guest: ENODEV' \
	'keynet-init: module virtio_net: loaded' \
	'keynet-init: modules: [0-9]+ loaded, [0-9]+ failed' \
	'keynet-init: mounted /sys/kernel/config' \
	'keynet-init: host input: config' \
	'keynet-init: network: eth0 10.0.2.15/24 via 10.0.2.2' \
	'keynet-init: starting keynode \(attempt 1\)' \
	'keynode: refusing to serve: no SEV-SNP platform' \
	'keynet-init: keynode refuses to serve: no SEV-SNP platform \(exit 3\); not restarting' \
	'keynet-init: powering off'; do
	expect plain "$re"
done
! grep -aq 'simulated platform ALLOWED' "$WORK/plain.log" || fail "plain: simulation allowed" "$WORK/plain.log"
! grep -aq 'attempt 2' "$WORK/plain.log" || fail "plain: keynode was restarted" "$WORK/plain.log"
printf '  boot to refusal %ss, to power-off %ss\n' "$t_refuse" "$t_off"

# ---- 2: test image (simulated platform) verified by keynet attest -----------------------
test_cmdline="$cmdline keynet.simulated=1"
step "boot 2/2: test initrd (simulated platform built in), command line '$test_cmdline' ($accel)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# What an SNP host would measure for this test launch (2 vCPUs, EPYC-Milan): the simulated
# platform reports it, and the client's manifest allows only it.
digest=$("$bin/snp-measure" --mode snp --vcpus 2 --vcpu-type EPYC-Milan --ovmf "$IMG/OVMF.fd" \
	--kernel "$IMG/vmlinuz" --initrd "$TEST_INITRD" --append "$test_cmdline")
published_digest=$(python3 -c 'import json, sys
print(next(d["digest"] for d in json.load(open(sys.argv[1]))["digests"] if d["vcpu_type"] == "EPYC-Milan" and d["vcpus"] == 2))' "$IMG/image.json")
[[ $digest != "$published_digest" ]] || fail "the test initrd and command line did not change the digest"
# The flag alone moves the measurement too: the published initrd under the test command
# line is not the published digest either.
flag_only=$("$bin/snp-measure" --mode snp --vcpus 2 --vcpu-type EPYC-Milan --ovmf "$IMG/OVMF.fd" \
	--kernel "$IMG/vmlinuz" --initrd "$IMG/initrd.img" --append "$test_cmdline")
[[ $flag_only != "$published_digest" ]] || fail "the test command line alone did not change the digest"
"$bin/keynode" dev-network --nodes 1 --dir "$WORK/net" --base-port "$port" --rsa-bits 2048 \
	--measurement "$digest" >/dev/null
authority=$(awk -F'"' '/^authority/ { print $2 }' "$WORK/net/node-0/keynode.toml")
cat >"$WORK/sim.toml" <<EOT
[node]
listen = "0.0.0.0:7000"
endpoint = "127.0.0.1:$port"
state_dir = "/run/keynet/state"
[evidence]
provider = "simulated"
simulated_state = "/run/keynet/host/simulated-platform.json"
[registry]
file = "/run/keynet/host/registry.json"
authority = "$authority"
[peers]
manifest = "/run/keynet/host/manifest.json"
trust_simulated = "/run/keynet/host/simulated-ark.pem"
[network]
address = "10.0.2.15/24"
gateway = "10.0.2.2"
EOT
boot sim "$TEST_INITRD" "$test_cmdline" \
	-fw_cfg "name=opt/keynet/config,file=$WORK/sim.toml" \
	-fw_cfg "name=opt/keynet/registry.json,file=$WORK/net/registry.json" \
	-fw_cfg "name=opt/keynet/manifest.json,file=$WORK/net/manifest.json" \
	-fw_cfg "name=opt/keynet/simulated-ark.pem,file=$WORK/net/simulated-ark.pem" \
	-fw_cfg "name=opt/keynet/simulated-platform.json,file=$WORK/net/node-0/simulated-platform.json" \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-10.0.2.15:7000" -device virtio-net-pci,netdev=n0
t_serving=$(wait_for sim 'serving')
expect sim 'keynet-init: simulated platform ALLOWED by the measured command line'
expect sim 'SIMULATED SEV-SNP PLATFORM'
# init raised the open-file limit keynode inherits; keynode fitted its connection table.
expect sim 'open_files=65536 max_connections=16384'
step "keynet attest https://127.0.0.1:$port (simulated roots, manifest = the test digest)"
ok=0
for _ in $(seq 1 30); do
	if "$bin/keynet" attest "https://127.0.0.1:$port" --manifest "$WORK/net/manifest.json" \
		--trust-simulated "$WORK/net/simulated-ark.pem" --json >"$WORK/attest.json" 2>"$WORK/attest.err"; then
		ok=1
		break
	fi
	sleep 1
done
((ok)) || { cat "$WORK/attest.err" "$WORK/attest.json" >&2; fail "keynet attest did not accept the node" "$WORK/sim.log"; }
grep -q "$digest" "$WORK/attest.json" || fail "the verdict does not carry the test digest"
printf '  ok  keynet attest: genuine (simulated), measurement %s...\n' "${digest:0:16}"
# The published manifest must NOT accept this guest.
if "$bin/keynet" attest "https://127.0.0.1:$port" --manifest "$IMG/manifest.json" \
	--trust-simulated "$WORK/net/simulated-ark.pem" >"$WORK/attest2.out" 2>&1; then
	fail "the test guest passed for the published image"
fi
printf '  ok  the published manifest rejects the test guest\n'
step "ACPI power button"
# QEMU's monitor drops a command sent before its prompt or closed before it is read, and
# a press can come before the guest's ACPI is listening: wait for the prompt and the echo,
# and press again every 15 s until the VM is off.
press() {
	python3 - "$WORK/sim.mon" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
buf = b""
while b"(qemu)" not in buf:
    buf += s.recv(4096)
s.sendall(b"system_powerdown\n")
buf = b""
deadline = time.time() + 5
while b"(qemu)" not in buf and time.time() < deadline:
    buf += s.recv(4096)
s.close()
PY
}
presses=0
while kill -0 "$QEMU_PID" 2>/dev/null && ((presses < TIMEOUT / 15)); do
	press || true
	presses=$((presses + 1))
	for _ in $(seq 1 75); do
		kill -0 "$QEMU_PID" 2>/dev/null || break
		sleep 0.2
	done
done
printf '  power button pressed %s time(s)\n' "$presses"
wait_exit sim
for re in 'keynet-init: shutdown requested \(power button\)' 'keynet-init: stopping keynode' \
	'keynet-init: keynode stopped' 'keynet-init: powering off'; do
	expect sim "$re"
done
printf '  boot to serving %ss\n' "$t_serving"
echo "BOOT TESTS PASSED (plain: refusal ${t_refuse}s, power-off ${t_off}s; simulated: serving ${t_serving}s)"
