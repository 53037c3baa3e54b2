#!/usr/bin/env bash
# Installs what the keynet-protocol registry tests compare against, idempotently:
# eth-account 0.13.7 from PyPI, hash-pinned (requirements.txt), in a private venv at
# out/protocol-venv. A venv installed from the current requirements.txt is left alone.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
venv="$root/out/protocol-venv"
stamp="$venv/requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)

if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'install ok installed'; then
    echo "==> installing Debian package python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
    && "$venv/bin/python" "$here/ethref.py" selftest >/dev/null 2>&1; then
    exit 0
fi
echo "==> installing eth-account 0.13.7 (hash-pinned) into out/protocol-venv"
rm -rf "$venv"
# Debian's interpreter, not one from pyenv on PATH: the pinned wheels are for CPython 3.11.
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --require-hashes -r "$here/requirements.txt"
if ! "$venv/bin/python" "$here/ethref.py" selftest; then
    echo "error: the eth-account reference in out/protocol-venv does not work" >&2
    exit 1
fi
echo "$want" >"$stamp"
