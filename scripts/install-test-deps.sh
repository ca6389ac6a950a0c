#!/usr/bin/env bash
# Installs the Debian packages the test suites run for real, when any is missing.
# Without root or apt, prints the exact command and fails, so nothing is skipped silently.
set -euo pipefail
packages=(pebble pdns-server pdns-backend-sqlite3 dnsutils)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "installing test dependencies: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
else
	echo "missing Debian packages for the test suite: ${missing[*]}" >&2
	echo "run as root: $cmd" >&2
	exit 1
fi
