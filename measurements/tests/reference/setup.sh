#!/usr/bin/env bash
# Installs what the snp-measure tests compare against, idempotently:
#   - Debian's generic OVMF (package `ovmf`, /usr/share/ovmf/OVMF.fd), a second real firmware;
#   - sev-snp-measure 0.0.13 from PyPI, hash-pinned, in a private venv at out/ref-venv.
# A machine that already has both does not touch apt or PyPI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
venv="$root/out/ref-venv"

missing=()
for pkg in ovmf python3-venv; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want="sev-snp-measure 0.0.13"
if [ -x "$venv/bin/sev-snp-measure" ] && [ "$("$venv/bin/sev-snp-measure" --version 2>/dev/null)" = "$want" ]; then
    exit 0
fi
echo "==> installing $want (hash-pinned) into out/ref-venv"
rm -rf "$venv"
# Debian's interpreter, not one from pyenv on PATH: the pinned wheels are for CPython 3.11.
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$here/requirements.txt"
got=$("$venv/bin/sev-snp-measure" --version)
if [ "$got" != "$want" ]; then
    echo "error: reference tool reports '$got', expected '$want'" >&2
    exit 1
fi
