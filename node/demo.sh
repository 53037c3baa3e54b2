#!/usr/bin/env bash
# make demo: a 4-node Keynet network on loopback (SIMULATED platform), step by step:
# DKG, a derived key, a threshold signature, one node stopped, signing again, the node
# restarted (it unseals its shares, no new DKG) and signing with it again; then a file
# encrypted for the user within a time window, decrypted by the user, refused to another
# address and refused after the window closed; and a statement signed by threshold BLS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=out/demo
step() { printf '\n==> [demo] %s\n' "$*"; }
die() {
	printf '\ndemo FAILED: %s\n' "$*" >&2
	for f in "$DIR"/node-*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
	exit 1
}

step "building keynode and keynet (release)"
cargo build --release --locked -q -p keynode --features simulated
cargo build --release --locked -q -p keynet
bin=$PWD/target/release

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

port=$(python3 -c 'import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p > 60000: continue
    free = True
    for i in range(4):
        t = socket.socket()
        try: t.bind(("127.0.0.1", p + i))
        except OSError: free = False
        t.close()
    if free: print(p); break')

step "keynode dev-network --nodes 4 --dir $DIR (simulated AMD chain, signed registry, a user wallet)"
rm -rf "$DIR"
"$bin/keynode" dev-network --nodes 4 --dir "$DIR" --base-port "$port" --rsa-bits 2048 >/dev/null
net=$DIR/network.toml
user=$DIR/user.key
owner=$(cat "$DIR/user.address")
echo "  user (key owner): $owner"

start_node() {
	NO_COLOR=1 "$bin/keynode" run --config "$DIR/node-$1/keynode.toml" >>"$DIR/node-$1.log" 2>&1 &
	pids[$1]=$!
}

# Waits until `keynet status` shows $1 nodes genuine and holding keys (a node that unsealed
# its keys at start ran no DKG in this process: its DKG state is "unsealed").
wait_nodes() {
	for _ in $(seq 1 300); do
		"$bin/keynet" status --network "$net" >"$DIR/status.txt" 2>&1 || true
		if [[ $(grep -c 'genuine .* group key' "$DIR/status.txt") -eq $1 ]]; then
			return 0
		fi
		sleep 0.2
	done
	cat "$DIR/status.txt" >&2
	return 1
}

sign() {
	"$bin/keynet" sign --network "$net" --user-key "$user" --name demo-wallet --digest "$1" "${@:2}" |
		sed 's/^/  /'
}

step "starting 4 nodes: mutual attested TLS, then the DKG (FROST secp256k1 and BLS12-381)"
for i in 0 1 2 3; do start_node "$i"; done
wait_nodes 4 || die "the DKG did not finish"
sed 's/^/  /' "$DIR/status.txt"

step "keynet pkp derive: the user's key 'demo-wallet' from the network's root key and the key id"
"$bin/keynet" pkp derive --network "$net" --owner "$owner" --name demo-wallet | sed 's/^/  /'

digest=$(printf 'pay 1 ETH to bob' | sha256sum | cut -c1-64)
step "keynet sign: 3 of 4 nodes each check the user's authorisation, exchange commitments, sign"
sign "$digest" || die "signing failed"

step "stopping node 0 ($(sed -n 's/^endpoint = "\(.*\)"/\1/p' "$DIR/node-0/keynode.toml"))"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
step "keynet sign with one node down: the other three sign"
sign "$digest" || die "signing with a node down failed"

step "restarting node 0: it unseals its key shares (no new DKG)"
start_node 0
wait_nodes 4 || die "node 0 did not come back"
grep -a 'network keys unsealed' "$DIR/node-0.log" | tail -n 1 | sed 's/^/  /'
[[ $(grep -ac 'DKG started' "$DIR/node-0.log") -eq 1 ]] || die "node 0 ran a new DKG after its restart"
echo "  node 0 ran its DKG once, before the restart"


step "keynet sign with all 4 nodes, node 0 among them"
sign "$digest" --nodes 4 || die "signing with the restarted node failed"

step "keynet encrypt: a file for the user's address only, while a window is open (offline, the network's BLS key)"
head -c 1048576 /dev/urandom >"$DIR/secret.bin"
closes=$(($(date +%s) + 8))
cat >"$DIR/conditions.json" <<JSON
{ "version": 1,
  "condition": { "all": [ { "address_is": "$owner" }, { "time_before": $closes } ] } }
JSON
sed 's/^/  /' "$DIR/conditions.json"
"$bin/keynet" encrypt --network "$net" --conditions "$DIR/conditions.json" -o "$DIR/secret.enc" "$DIR/secret.bin" |
	sed 's/^/  /' || die "encryption failed"

step "keynet decrypt as the user: each node checks the conditions, the client verifies and combines the shares"
"$bin/keynet" decrypt --network "$net" --user-key "$user" -o "$DIR/secret.out" "$DIR/secret.enc" |
	sed 's/^/  /' || die "decryption as the user failed"
cmp -s "$DIR/secret.bin" "$DIR/secret.out" || die "the decrypted file differs"
echo "  the decrypted file equals the original (1 MiB)"

step "keynet decrypt as another address: refused, naming the condition"
printf '%064x\n' 7 >"$DIR/other.key"
if "$bin/keynet" decrypt --network "$net" --user-key "$DIR/other.key" -o "$DIR/other.out" "$DIR/secret.enc" 2>"$DIR/refusal.txt"; then
	die "another address decrypted the file"
fi
sed 's/^/  /' "$DIR/refusal.txt"
grep -q condition_failed "$DIR/refusal.txt" || die "the refusal does not name the condition"
[[ ! -e $DIR/other.out ]] || die "a refused decryption left an output file"

step "waiting for the window to close ($closes), then decrypting as the user again: refused"
while (($(date +%s) < closes)); do sleep 0.5; done
if "$bin/keynet" decrypt --network "$net" --user-key "$user" -o "$DIR/late.out" "$DIR/secret.enc" 2>"$DIR/late.txt"; then
	die "the file decrypted after its window closed"
fi
sed 's/^/  /' "$DIR/late.txt"
grep -q time_before "$DIR/late.txt" || die "the refusal does not name the time condition"

step "keynet bls-sign: the network signs a JWT signing input for the user, by threshold BLS"
"$bin/keynet" bls-sign --network "$net" --user-key "$user" \
	--conditions "{\"version\":1,\"condition\":{\"address_is\":\"$owner\"}}" \
	--message 'eyJhbGciOiJCTFMxMjM4MSJ9.eyJzdWIiOiJkZW1vIn0' | sed 's/^/  /' || die "bls-sign failed"

step "done: every signature above was verified (RFC 9591 for FROST; BLS pairing check for shares and results)"
