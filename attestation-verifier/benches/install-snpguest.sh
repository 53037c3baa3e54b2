#!/usr/bin/env bash
# Installs snpguest 0.11 (the reference the `verify` bench compares against) into
# out/tools/bin, unless it is already there. Idempotent. Takes a few minutes the first
# time (it builds a vendored OpenSSL).
#
# Usage: install-snpguest.sh [ROOT]   (ROOT defaults to <workspace>/out/tools)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../.." && pwd)"
root="${1:-$workspace/out/tools}"
bin="$root/bin/snpguest"
want='^0.11'

if [[ -x "$bin" ]]; then
    version="$("$bin" --version 2>/dev/null || true)"
    if [[ "$version" == *" 0.11."* ]]; then
        echo "snpguest already installed: $bin ($version)"
        exit 0
    fi
    echo "snpguest at $bin is '$version', not 0.11: reinstalling"
fi

echo "installing snpguest $want into $root (cargo install, takes several minutes)..."
mkdir -p "$root"
cargo install --locked --root "$root" snpguest --version "$want"
echo "installed: $("$bin" --version)"
