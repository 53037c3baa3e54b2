#!/usr/bin/python3
"""Write ovmf.json for a finished OVMF build and sanity-check the image.

Deterministic output: sorted keys, no timestamps, no paths except the
documented fixed build directory. Exit status 3 if OVMF.fd lacks the SEV
metadata / SEV hash table GUIDs (kernel-hashes support).

Called by ovmf/build.sh; run with /usr/bin/python3 (not a pyenv python).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import uuid

TOOL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}

# (key, command, substring selecting the version line; None = first line)
TOOLS = [
    ("binutils", ["ld", "--version"], None),
    ("gcc", ["gcc", "--version"], None),
    ("iasl", ["iasl", "-v"], "version"),
    ("make", ["make", "--version"], None),
    ("nasm", ["nasm", "-v"], None),
    ("python3", ["python3", "--version"], None),
]

# Debian packages whose versions are recorded (the build dependencies).
PACKAGES = [
    "acpica-tools", "binutils", "build-essential", "dpkg-dev", "gcc", "make",
    "nasm", "patch", "python3", "uuid-dev",
]

# SEV GUIDs as found in the image (EFI GUIDs are stored little-endian).
SEV_GUIDS = {
    "sev_metadata_footer": "dc886566-984a-4798-a75e-5585a7bf67cc",
    "sev_hash_table": "7255371f-3a3b-4b04-927b-1da6efa8d454",
}


def run(cmd):
    res = subprocess.run(cmd, env=TOOL_ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, check=False)
    return res.returncode, res.stdout


def dpkg_version(pkg):
    rc, out = run(["dpkg-query", "-W", "-f=${Version}", pkg])
    return out.strip() if rc == 0 else None


def owning_package(path):
    # The real binary first (gcc -> gcc-12, python3 -> python3.11-minimal).
    for candidate in (os.path.realpath(path), path):
        rc, out = run(["dpkg-query", "-S", candidate])
        if rc != 0:
            continue
        for line in out.splitlines():
            if line.startswith("diversion "):
                continue
            pkg = line.split(": ", 1)[0].split(",")[0].strip()
            pkg = pkg.split(":", 1)[0]  # drop :arch qualifier
            return pkg
    return None


def tool_info(cmd, select):
    path = None
    for d in TOOL_ENV["PATH"].split(":"):
        if os.access(os.path.join(d, cmd[0]), os.X_OK):
            path = os.path.join(d, cmd[0])
            break
    if path is None:
        return {"error": "not found"}
    _, out = run([path] + cmd[1:])
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    version = lines[0] if lines else ""
    if select:
        version = next((ln for ln in lines if select in ln.lower()), version)
    pkg = owning_package(path)
    return {
        "command": path,
        "version": version,
        "package": pkg,
        "package_version": dpkg_version(pkg) if pkg else None,
    }


def read_lock(path):
    recs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if fields and fields[0] not in recs:
                recs[fields[0]] = fields[1:]
    return recs


def os_release():
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lock", required=True)
    ap.add_argument("--fd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--patch-list", required=True,
                    help="file: one applied Debian patch name per line")
    ap.add_argument("--local-mods", required=True,
                    help="file: one local modification per line")
    ap.add_argument("--build-command", required=True)
    ap.add_argument("--environment", action="append", default=[],
                    help="KEY=VALUE of the controlled build environment")
    args = ap.parse_args()

    lock = read_lock(args.lock)
    version = lock["source-version"][0]
    pinned_sha, pinned_size = lock["output"][1], lock["output"][2]

    with open(args.fd, "rb") as f:
        fd = f.read()
    fd_sha = hashlib.sha256(fd).hexdigest()

    checks = {name: uuid.UUID(g).bytes_le in fd for name, g in SEV_GUIDS.items()}

    with open(args.patch_list, encoding="utf-8") as f:
        patches = [ln.strip() for ln in f if ln.strip()]
    with open(args.local_mods, encoding="utf-8") as f:
        local_mods = [ln.strip() for ln in f if ln.strip()]

    env = dict(kv.split("=", 1) for kv in args.environment)

    doc = {
        "schema": "keynet-ovmf-build/1",
        "inputs": [
            {
                "name": lock[kind][0],
                "sha256": lock[kind][1],
                "source": "Debian source package %s %s (suite %s)"
                          % (lock["source-package"][0], version,
                             lock["source-suite"][0]),
                "version": version,
            }
            for kind in ("orig-tarball", "debian-tarball")
        ],
        "build": {
            "platform": "OvmfPkg/AmdSev/AmdSevX64.dsc",
            "arch": "X64",
            "toolchain_tag": "GCC5",
            "target": "RELEASE",
            "command": args.build_command,
            "extra_defines": [],
            "build_dir": args.build_dir,
            "environment": env,
            "debian_patches": patches,
            "local_modifications": local_mods,
            "host_os": os_release(),
        },
        "toolchain": {key: tool_info(cmd, sel) for key, cmd, sel in TOOLS},
        "packages": {p: dpkg_version(p) for p in PACKAGES},
        "output": {
            "name": "OVMF.fd",
            "sha256": fd_sha,
            "size": len(fd),
            "pinned_sha256": pinned_sha,
            "pinned_size": int(pinned_size),
            "matches_pin": fd_sha == pinned_sha and len(fd) == int(pinned_size),
            "contains_guid": {
                name: {"guid": SEV_GUIDS[name], "present": present}
                for name, present in checks.items()
            },
        },
    }

    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, args.out)

    missing = [n for n, ok in checks.items() if not ok]
    if missing:
        for n in missing:
            print("ERROR [ovmf]: OVMF.fd lacks the %s GUID %s" % (n, SEV_GUIDS[n]),
                  file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
