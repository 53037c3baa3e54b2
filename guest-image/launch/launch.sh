#!/usr/bin/env bash
# Launches the published Keynet guest image as an AMD SEV-SNP guest under QEMU, in exactly
# the shape its launch digests were published for: the image's OVMF.fd, vmlinuz,
# initrd.img and command line, direct boot with kernel-hashes=on, one of the published
# vCPU counts and types, and no SEV features beyond SNP itself (SEV_FEATURES 0x1).
# Per-node configuration is not measured: it reaches the guest through fw_cfg as untrusted
# input (opt/keynet/config, opt/keynet/<name>), which keynode validates.
#
# By default the QEMU command is printed, not run; --run executes it. See --help.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd -P)
PROG=${0##*/}

readonly EXIT_USAGE=2 EXIT_HOST=3
# The published launch shapes (measurements/published/<version>.json).
readonly VCPU_COUNTS=(1 2 4 8 16 32 64 128)
readonly VCPU_TYPES=(EPYC-Milan EPYC-Genoa EPYC-Turin)
# Host input limits of the guest's init (guest-image/init/src/hostinput.rs).
readonly MAX_INPUT_BYTES=$((4 * 1024 * 1024))
readonly FWCFG_PREFIX=opt/keynet/
# QEMU accepts fw_cfg names of at most 55 characters, so 55 - len("opt/keynet/") here,
# although the guest itself would accept names of up to 64.
readonly MAX_NAME=$((55 - ${#FWCFG_PREFIX}))
readonly QEMU_MIN_MAJOR=9 QEMU_MIN_MINOR=1
# SNP guest policy bits (SEV-SNP ABI, GUEST_POLICY).
readonly POLICY_RESERVED_ONE=17 POLICY_MIGRATE_MA=18 POLICY_DEBUG=19

usage() {
	cat <<EOF
Usage: $PROG --config FILE [OPTIONS]

Launch the Keynet guest image as an AMD SEV-SNP guest under QEMU, in a shape whose launch
digest is published. Without --run the QEMU command is printed (shell-quoted, one option
per line); with --run it is executed. The launch digest the guest should get is printed
to stderr.

Options:
  --image DIR         image directory from 'make image' (default: <repo>/out/image);
                      needs OVMF.fd vmlinuz initrd.img cmdline, and image.json to show
                      the expected digest
  --config FILE       node.toml, passed as fw_cfg opt/keynet/config (required)
  --file NAME=PATH    extra host input, passed as fw_cfg opt/keynet/NAME; the guest sees
                      it as /run/keynet/host/NAME (repeatable). NAME: [A-Za-z0-9._-],
                      1-$MAX_NAME characters (QEMU's fw_cfg name limit), not 'config';
                      files at most 4 MiB. E.g. manifest.json=measurements/published/0.3.0.json
  --vcpus N           vCPU count: ${VCPU_COUNTS[*]} (default 4)
  --vcpu-type T       vCPU type: ${VCPU_TYPES[*]} (default EPYC-Milan)
  --memory MIB        guest memory in MiB (default 2048, at least 512)
  --port H[:G]        forward host TCP port H to guest port G with QEMU user networking
                      (default 7000:7000; G defaults to H)
  --netdev SPEC       replace the user-net netdev entirely, e.g.
                      'tap,id=n0,ifname=tap0,script=no,downscript=no' (must contain id=;
                      --port does not apply then)
  --qemu PATH         QEMU binary (default qemu-system-x86_64)
  --policy HEX        SNP guest policy (default 0x30000: SMT allowed, reserved bit 17,
                      no debug, no migration agent); the debug bit (19) is refused
  --run               execute QEMU (checks the host first) instead of printing
  -h, --help          this help

Not configurable, because the published digests depend on them: the firmware, kernel,
initrd and command line of the image directory, kernel-hashes=on, QEMU as the VMM and
SEV_FEATURES 0x1 (nothing beyond SNP, e.g. no debug-swap).

--run needs QEMU >= $QEMU_MIN_MAJOR.$QEMU_MIN_MINOR, /dev/kvm and /dev/sev (kvm_amd with sev_snp=1). The
guest's console is the serial port, on this terminal; stop the guest with the ACPI power
button (QEMU monitor: Ctrl-A c, then 'system_powerdown').

Exit codes:
  0  command printed; with --run the script becomes QEMU, so its status is QEMU's
     (0 after the guest powered off, 1 if QEMU could not start the guest)
  2  usage error or bad input (options, image directory, config, host files)
  3  host not capable (QEMU missing or older than $QEMU_MIN_MAJOR.$QEMU_MIN_MINOR, no /dev/kvm,
     no /dev/sev, SNP disabled in kvm_amd); only checked with --run

Examples:
  $PROG --config node.toml --file manifest.json=measurements/published/0.3.0.json
  $PROG --config node.toml --file manifest.json=measurements/published/0.3.0.json \\
      --vcpus 8 --vcpu-type EPYC-Genoa --port 7000 --run
EOF
}

err() { printf '%s: error: %s\n' "$PROG" "$*" >&2; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage_error() {
	err "$@"
	printf "Run '%s --help' for usage.\n" "$PROG" >&2
	exit "$EXIT_USAGE"
}
input_error() {
	err "$@"
	exit "$EXIT_USAGE"
}
host_error() {
	err "$@"
	exit "$EXIT_HOST"
}

# in_list WORD LIST...: whether WORD is one of LIST.
in_list() {
	local word=$1 x
	shift
	for x in "$@"; do
		[[ $x == "$word" ]] && return 0
	done
	return 1
}

# file_size PATH: size in bytes (following symlinks).
file_size() { stat -L -c %s -- "$1"; }

# input_file WHAT PATH: PATH must be a readable regular file of at most 4 MiB; prints its
# absolute path.
input_file() {
	local what=$1 path=$2 size
	[[ -e $path ]] || input_error "$what: $path does not exist"
	[[ -f $path ]] || input_error "$what: $path is not a regular file"
	[[ -r $path ]] || input_error "$what: $path is not readable"
	size=$(file_size "$path")
	((size <= MAX_INPUT_BYTES)) ||
		input_error "$what: $path is $size bytes; the guest accepts at most $MAX_INPUT_BYTES (4 MiB)"
	realpath -e -- "$path"
}

# fwcfg_file PATH: PATH escaped for a QEMU option value (a comma is doubled).
fwcfg_file() { printf '%s' "${1//,/,,}"; }

# ---- options ----------------------------------------------------------------------------
image=$REPO_ROOT/out/image
config=
files=()
vcpus=4
vcpu_type=EPYC-Milan
memory=2048
port=
netdev=
qemu='qemu-system-x86_64'
policy=0x30000
run=0

while (($#)); do
	opt=$1
	shift
	val=
	has_val=0
	if [[ $opt == --*=* ]]; then
		val=${opt#*=}
		opt=${opt%%=*}
		has_val=1
	fi
	case $opt in
	--image | --config | --file | --vcpus | --vcpu-type | --memory | --port | --netdev | --qemu | --policy)
		if ((!has_val)); then
			(($#)) || usage_error "$opt needs a value"
			val=$1
			shift
		fi
		;;
	--run | --help | -h)
		if ((has_val)); then usage_error "$opt takes no value"; fi
		;;
	*) ;;
	esac
	case $opt in
	--image) image=$val ;;
	--config) config=$val ;;
	--file) files+=("$val") ;;
	--vcpus) vcpus=$val ;;
	--vcpu-type) vcpu_type=$val ;;
	--memory) memory=$val ;;
	--port) port=$val ;;
	--netdev) netdev=$val ;;
	--qemu) qemu=$val ;;
	--policy) policy=$val ;;
	--run) run=1 ;;
	--help | -h)
		usage
		exit 0
		;;
	*) usage_error "unknown argument: $opt" ;;
	esac
done

# ---- validation -------------------------------------------------------------------------
in_list "$vcpus" "${VCPU_COUNTS[@]}" ||
	usage_error "--vcpus $vcpus: no digest is published for it; use one of: ${VCPU_COUNTS[*]}"
in_list "$vcpu_type" "${VCPU_TYPES[@]}" ||
	usage_error "--vcpu-type $vcpu_type: no digest is published for it; use one of: ${VCPU_TYPES[*]}"

[[ $memory =~ ^[1-9][0-9]{0,7}$ ]] || usage_error "--memory $memory: expected a number of MiB"
((memory >= 512)) || usage_error "--memory $memory: at least 512 MiB"

[[ $policy =~ ^0[xX][0-9a-fA-F]{1,16}$ ]] || usage_error "--policy $policy: expected hex such as 0x30000"
policy_val=$((policy))
if (((policy_val >> POLICY_DEBUG) & 1)); then
	usage_error "--policy $policy: the debug bit (19) is set; a debuggable guest's memory is readable by the host and verifiers reject it"
fi
if ((!((policy_val >> POLICY_RESERVED_ONE) & 1))); then
	usage_error "--policy $policy: reserved bit 17 must be 1 (the SNP firmware refuses the launch otherwise)"
fi
if (((policy_val >> POLICY_MIGRATE_MA) & 1)); then
	note "warning: --policy $policy allows a migration agent (bit 18); the default 0x30000 does not"
fi

if [[ -n $netdev ]]; then
	[[ -z $port ]] || usage_error "--port only applies to the default user networking; with --netdev forward the port yourself"
	[[ $netdev =~ (^|,)id=([^,]+)(,|$) ]] || usage_error "--netdev '$netdev': needs an id=..., e.g. tap,id=n0,ifname=tap0,script=no"
	netdev_id=${BASH_REMATCH[2]}
	guest_port=
else
	port=${port:-7000:7000}
	[[ $port =~ ^([0-9]{1,5})(:([0-9]{1,5}))?$ ]] || usage_error "--port $port: expected HOSTPORT or HOSTPORT:GUESTPORT"
	host_port=$((10#${BASH_REMATCH[1]}))
	guest_port=$((10#${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}))
	((host_port >= 1 && host_port <= 65535 && guest_port >= 1 && guest_port <= 65535)) ||
		usage_error "--port $port: ports must be 1-65535"
	netdev_id=n0
	netdev="user,id=$netdev_id,hostfwd=tcp::$host_port-:$guest_port"
fi

[[ -n $qemu ]] || usage_error "--qemu: empty"

# The image directory.
[[ -d $image ]] || input_error "--image $image: not a directory (run 'make image' first)"
image=$(cd -- "$image" && pwd -P)
for f in OVMF.fd vmlinuz initrd.img cmdline; do
	[[ -f $image/$f && -r $image/$f ]] || input_error "--image $image: $f missing or unreadable (run 'make image' first)"
	[[ -s $image/$f ]] || input_error "--image $image: $f is empty"
done
cmdline=$(<"$image/cmdline")
# The digest covers the command line byte for byte: it must be the file's exact contents.
if ! cmp -s -- <(printf '%s' "$cmdline") "$image/cmdline" || [[ $cmdline == *$'\n'* ]]; then
	input_error "$image/cmdline: must be exactly one line without a trailing newline, as 'make image' writes it"
fi

# Host input: the config and the extra files.
[[ -n $config ]] || usage_error "--config FILE is required (the node's node.toml)"
config_path=$(input_file "--config" "$config")
fw_names=(config)
fw_paths=("$config_path")
for spec in "${files[@]}"; do
	[[ $spec == *=* ]] || usage_error "--file $spec: expected NAME=PATH"
	name=${spec%%=*}
	path=${spec#*=}
	[[ $name =~ ^[A-Za-z0-9._-]+$ ]] ||
		usage_error "--file $spec: name '$name' must use only [A-Za-z0-9._-]"
	((${#name} <= MAX_NAME)) ||
		usage_error "--file $spec: name '$name' is ${#name} characters; at most $MAX_NAME fit QEMU's fw_cfg name limit (55 with '$FWCFG_PREFIX')"
	[[ $name != . && $name != .. ]] || usage_error "--file $spec: name '$name' is not allowed"
	[[ $name != config ]] || usage_error "--file $spec: 'config' is reserved for --config"
	if in_list "$name" "${fw_names[@]}"; then usage_error "--file $spec: name '$name' given twice"; fi
	[[ -n $path ]] || usage_error "--file $spec: empty path"
	fw_names+=("$name")
	fw_paths+=("$(input_file "--file $name" "$path")")
done

# ---- expected digest --------------------------------------------------------------------
# Reads image.json (and checks the artifacts against it), looks the launch shape up in the
# published manifest(s), and warns about node.toml values that cannot work with this
# launch. Exit 2 if the image directory does not match its own record.
report_digest() {
	local pairs=() i
	for i in "${!fw_names[@]}"; do
		pairs+=("${fw_names[$i]}=${fw_paths[$i]}")
	done
	python3 - "$PROG" "$image" "$vcpu_type" "$vcpus" "$REPO_ROOT/measurements/published" \
		"${guest_port:-}" "${pairs[@]}" <<'PY'
import hashlib, json, os, shlex, sys

prog, image, vtype, vcpus, published_dir, guest_port = sys.argv[1:7]
host_files = dict(p.split("=", 1) for p in sys.argv[7:])
vcpus = int(vcpus)


def say(msg):
    print(f"{prog}: {msg}", file=sys.stderr)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_json(path):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def digests_of_manifest(m):
    """The digests a keynet.measurements/v1 manifest publishes for this shape."""
    if not isinstance(m, dict) or m.get("schema") != "keynet.measurements/v1":
        return None
    out = set()
    for e in m.get("measurements") or []:
        s = e.get("shape") or {}
        if s.get("vcpu_type") == vtype and s.get("vcpus") == vcpus:
            out.add(str(e.get("digest", "")).lower())
    return out


expected = None
version = None
record_path = os.path.join(image, "image.json")
record = load_json(record_path) if os.path.exists(record_path) else None
if record is None:
    if os.path.exists(record_path):
        say(f"error: {record_path} is not valid JSON")
        sys.exit(2)
    say(f"no {record_path}: cannot show the expected launch digest; compute it with snp-measure (below)")
else:
    version = (record.get("image") or {}).get("version")
    # The files must be the ones the record (and so its digests) describe.
    arts = {a.get("name"): a for a in record.get("artifacts") or []}
    bad = []
    for name in ("OVMF.fd", "vmlinuz", "initrd.img", "cmdline"):
        a = arts.get(name)
        if a is None:
            continue
        got = sha256(os.path.join(image, name))
        if got != a.get("sha256"):
            bad.append(f"{name}: sha256 {got}, image.json says {a.get('sha256')}")
    if bad:
        for b in bad:
            say(f"error: {b}")
        say("error: this image directory is not the image its image.json describes; its digests "
            "would not apply. Rebuild with 'make image' (or take the published files).")
        sys.exit(2)
    launch = record.get("launch") or {}
    if launch and (launch.get("vmm") != "QEMU" or launch.get("guest_features") != "0x1"
                   or launch.get("kernel_hashes") is not True):
        say(f"warning: image.json records a launch of vmm={launch.get('vmm')} "
            f"guest_features={launch.get('guest_features')} kernel_hashes={launch.get('kernel_hashes')}; "
            "this script launches QEMU, guest features 0x1, kernel-hashes=on")
    for d in record.get("digests") or []:
        if d.get("vcpu_type") == vtype and d.get("vcpus") == vcpus:
            expected = str(d.get("digest", "")).lower()
    if expected is None:
        say(f"error: {record_path} has no digest for {vcpus} x {vtype}")
        sys.exit(2)
    say(f"expected SNP launch digest ({vcpus} x {vtype}, QEMU, guest features 0x1, kernel-hashes):")
    print(f"    {expected}", file=sys.stderr)

    if version:
        pub = os.path.join(published_dir, f"{version}.json")
        ds = digests_of_manifest(load_json(pub)) if os.path.exists(pub) else None
        if ds is None:
            say(f"note: no published manifest {pub} here to compare with")
        elif expected in ds:
            say(f"it is published in {pub}")
        else:
            say(f"WARNING: it is NOT in {pub}: verifiers using that manifest will reject this node")

    # Manifests handed to the guest (e.g. manifest.json for [peers]).
    for name, path in host_files.items():
        if name == "config" or not name.endswith(".json"):
            continue
        ds = digests_of_manifest(load_json(path))
        if ds is None:
            continue
        if expected in ds:
            say(f"host file {name} ({path}) publishes this digest")
        else:
            say(f"WARNING: host file {name} ({path}) does not publish this digest; "
                "peers checking against it would reject this node")

# node.toml: best-effort hints only; keynode validates it in the guest.
try:
    import tomllib
except ImportError:
    tomllib = None
if tomllib is not None:
    try:
        with open(host_files["config"], "rb") as f:
            cfg = tomllib.load(f)
    except (OSError, ValueError) as e:
        say(f"warning: config is not valid TOML ({e}); keynode will refuse it (exit 2)")
        cfg = None
    if isinstance(cfg, dict):
        node = cfg.get("node") or {}
        listen = str(node.get("listen", ""))
        if guest_port and listen.rpartition(":")[2] not in ("", guest_port):
            say(f"warning: node.listen is {listen!r} but the forwarded guest port is {guest_port}")
        if str((cfg.get("evidence") or {}).get("provider", "")) == "simulated":
            say("warning: evidence.provider \"simulated\" is refused by the image (keynode exits 2)")
        if not node.get("endpoint"):
            say("warning: node.endpoint is missing; it must be host:port exactly as in the registry")
        prefix = "/run/keynet/host/"

        def walk(v, key):
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{key}.{k}" if key else k)
            elif isinstance(v, str) and v.startswith(prefix):
                name = v[len(prefix):]
                if name not in host_files:
                    say(f"warning: {key} = {v!r}, but no --file {name}=... is passed")

        walk(cfg, "")

q = lambda name: shlex.quote(os.path.join(image, name))
print(
    "Check it yourself with snp-measure (this repository's, or sev-snp-measure):\n"
    f"    snp-measure --mode snp --vcpus {vcpus} --vcpu-type {vtype} "
    f"--ovmf {q('OVMF.fd')} --kernel {q('vmlinuz')} --initrd {q('initrd.img')} "
    f"--append \"$(cat {q('cmdline')})\"\n"
    "and compare it with measurements/published/<version>.json"
    + (f" (version {version})" if version else ""),
    file=sys.stderr,
)
PY
}

if command -v python3 >/dev/null 2>&1; then
	rc=0
	report_digest || rc=$?
	if ((rc == EXIT_USAGE)); then
		exit "$EXIT_USAGE"
	elif ((rc != 0)); then
		note "warning: could not evaluate image.json (python3 exited with $rc); check the digest with snp-measure"
	fi
else
	note "python3 not found: cannot read image.json for the expected digest; compute it with:"
	note "  snp-measure --mode snp --vcpus $vcpus --vcpu-type $vcpu_type --ovmf $image/OVMF.fd --kernel $image/vmlinuz --initrd $image/initrd.img --append \"\$(cat $image/cmdline)\""
fi

# ---- the command ------------------------------------------------------------------------
cmd=(
	"$qemu"
	-enable-kvm
	-machine "q35,confidential-guest-support=sev0,memory-backend=ram1"
	-cpu "$vcpu_type"
	-smp "$vcpus"
	-m "$memory"
	-object "memory-backend-memfd,id=ram1,size=${memory}M,share=true,prealloc=false"
	# No guest feature beyond SNP is requested: SEV_FEATURES stays 0x1.
	-object "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=$policy,kernel-hashes=on"
	-bios "$image/OVMF.fd"
	-kernel "$image/vmlinuz"
	-initrd "$image/initrd.img"
	-append "$cmdline"
	-nographic
	-no-reboot
	-netdev "$netdev"
	# In an SNP guest virtio must use the modern interface behind the IOMMU platform
	# (bounce buffers in shared memory). romfile=: the kernel is booted directly, no option
	# ROM is needed.
	-device "virtio-net-pci,netdev=$netdev_id,disable-legacy=on,iommu_platform=on,romfile="
)
for i in "${!fw_names[@]}"; do
	cmd+=(-fw_cfg "name=$FWCFG_PREFIX${fw_names[$i]},file=$(fwcfg_file "${fw_paths[$i]}")")
done

# quote WORD: WORD for a shell command line: as it is if it is plain, in single quotes if
# that suffices, otherwise as printf %q quotes it.
quote() {
	if [[ $1 =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
		printf '%s' "$1"
	elif [[ $1 =~ ^[[:print:]]+$ && $1 != *"'"* ]]; then
		printf "'%s'" "$1"
	else
		printf '%q' "$1"
	fi
}

# print_cmd: the command, shell-quoted, one option (with its value) per line.
print_cmd() {
	local i=1 n=${#cmd[@]}
	quote "${cmd[0]}"
	while ((i < n)); do
		printf ' \\\n  '
		quote "${cmd[$i]}"
		if [[ ${cmd[$i]} == -* ]] && ((i + 1 < n)) && [[ ${cmd[$((i + 1))]} != -* ]]; then
			printf ' '
			quote "${cmd[$((i + 1))]}"
			i=$((i + 1))
		fi
		i=$((i + 1))
	done
	printf '\n'
}

if ((!run)); then
	print_cmd
	exit 0
fi

# ---- --run: host checks, then QEMU ------------------------------------------------------
command -v -- "$qemu" >/dev/null 2>&1 || host_error "QEMU not found: '$qemu' (install QEMU >= $QEMU_MIN_MAJOR.$QEMU_MIN_MINOR or pass --qemu PATH)"
qemu_version=$("$qemu" --version 2>/dev/null | head -n 1) || true
[[ $qemu_version =~ version\ ([0-9]+)\.([0-9]+) ]] ||
	host_error "cannot tell the version of '$qemu' (its --version printed: '${qemu_version}')"
q_major=${BASH_REMATCH[1]}
q_minor=${BASH_REMATCH[2]}
if ((q_major < QEMU_MIN_MAJOR || (q_major == QEMU_MIN_MAJOR && q_minor < QEMU_MIN_MINOR))); then
	host_error "QEMU $q_major.$q_minor is too old: SEV-SNP guests (sev-snp-guest, kernel-hashes) need QEMU >= $QEMU_MIN_MAJOR.$QEMU_MIN_MINOR"
fi
[[ -e /dev/kvm ]] || host_error "/dev/kvm missing: KVM is not available on this host"
[[ -e /dev/sev ]] ||
	host_error "/dev/sev missing: no AMD SEV firmware interface (needs an AMD EPYC host with SEV-SNP enabled in the BIOS, the ccp driver and kvm_amd loaded)"
snp_param=/sys/module/kvm_amd/parameters/sev_snp
if [[ -r $snp_param ]]; then
	snp_state=$(<"$snp_param")
	[[ $snp_state == Y || $snp_state == 1 ]] ||
		host_error "kvm_amd reports sev_snp=$snp_state: SNP is disabled (needs Linux >= 6.11 with kvm_amd sev_snp=1, SNP enabled in the BIOS, and SNP-capable SEV firmware)"
else
	note "warning: $snp_param not found: cannot confirm that KVM supports SEV-SNP (Linux >= 6.11, kvm_amd loaded)"
fi

note "starting QEMU $q_major.$q_minor; serial console follows (Ctrl-A c, then system_powerdown, stops the guest cleanly)"
exec "${cmd[@]}"
