# scripts/packages.sh: sourced by the set-up scripts.
#
# rtrec_ensure_packages PKG...  installs the Debian packages that are missing
# (apt-get, non-interactive) when run as root; otherwise fails naming them.
rtrec_ensure_packages()
{
	local missing=() p
	for p in "$@"; do
		dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages: ${missing[*]} (run as root, e.g. with sudo)" >&2
		return 1
	fi
	echo "==> installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}
