# shellcheck shell=bash
# The one judgement of an `apt-get update` log of a private apt state, shared by the
# firmware fetch (ovmf/fetch.sh) and the kernel relock (guest-image/relock.sh). Source it.

# apt_update_log_ok LOG: judges the log (stdout+stderr) of an `apt-get update`
# of a private apt state. Returns 0 if the index was fetched and verified,
# 1 otherwise, after naming the offending lines on stderr. Known-benign
# warnings are printed as notes and are not fatal.
#
# Fatal: every E:/Error: and Err: line and every W:/Warning: line NOT in
# APT_BENIGN_WARNINGS. An allow-list rather than a deny-list of fatal patterns,
# because a failure must never pass: apt words things differently across
# versions (and reports e.g. an unreachable mirror only with W: lines and exit
# status 0), and a deny-list that misses one wording of a signature or fetch
# failure would let it through silently, whereas an allow-list that misses a
# benign wording only stops the build with the text shown. So GPG errors,
# NO_PUBKEY, "is not signed", "Failed to fetch", "Some index files failed to
# download", 404s and any warning nobody has looked at yet all stay fatal.
APT_BENIGN_WARNINGS=(
	# The checkout (hence the private state) lives under a directory that
	# apt's sandbox user cannot traverse (e.g. /root with mode 0700, or a
	# `mktemp -d` folder), so apt downloads as root instead. The index is
	# still signature-checked exactly as in the sandbox.
	"^(W|Warning): Download is performed unsandboxed as root as file '.*' couldn't be accessed by user '[^']+'\. - "
	# A VALID signature by a key apt considers weak (apt >= 2.7, e.g. rsa1024), in
	# the form "URL SUITE InRelease: Signature by key ... uses weak algorithm".
	# "uses weak digest algorithm" (SHA1) is deliberately not listed.
	"^(W|Warning): [a-z]+://[^ ]+ [^ ]+ InRelease: Signature by key [0-9A-Fa-f]+ uses weak algorithm "
)
apt_update_log_ok() {
	local log=$1 line re ok=0
	while IFS= read -r line; do
		case $line in
		E:* | Error:* | Err:*)
			printf 'ERROR [apt update]: %s\n' "$line" >&2
			ok=1
			;;
		W:* | Warning:*)
			# Whatever else it says, a line about a GPG error is never benign.
			if [[ $line == *"GPG error"* || $line == *NO_PUBKEY* ]]; then
				printf 'ERROR [apt update]: %s\n' "$line" >&2
				ok=1
				continue
			fi
			for re in "${APT_BENIGN_WARNINGS[@]}"; do
				if [[ $line =~ $re ]]; then
					printf 'NOTE [apt update] (benign, not fatal): %s\n' "$line" >&2
					continue 2
				fi
			done
			printf 'ERROR [apt update]: %s\n' "$line" >&2
			ok=1
			;;
		N:* | Notice:*)
			printf 'NOTE [apt update]: %s\n' "$line" >&2
			;;
		esac
	done < <(cat -- "$log"; printf '\n')
	return "$ok"
}
