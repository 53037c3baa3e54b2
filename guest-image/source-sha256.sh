#!/usr/bin/env bash
# sha256 of the source tree: "sha256  path" of every tracked file (as it is on disk),
# sorted by path, hashed. measurements/published/ is left out: it is written from the
# image. Outside a git checkout, every file but out/, target/ and .git/ counts.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z
else
	find . -type f ! -path './out/*' ! -path './target/*' ! -path './.git/*' -printf '%P\0'
fi | grep -zv '^measurements/published/' | LC_ALL=C sort -z |
	while IFS= read -r -d '' f; do
		[[ -f $f ]] && printf '%s  %s\n' "$(sha256sum -- "$f" | cut -d' ' -f1)" "$f"
	done | sha256sum | cut -d' ' -f1
