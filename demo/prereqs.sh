#!/usr/bin/env bash
# `make demo`, first step: the Debian packages the demo needs (a C compiler and static
# libc for the launcher, an image builder, uidmap for subordinate ids). As root, installs
# what is missing; as a user, prints the one command that does and stops.
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ] || need+=(libc6-dev)
if [ "$(id -u)" = 0 ]; then
	command -v debootstrap >/dev/null || need+=(debootstrap)
else
	command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
	command -v newuidmap >/dev/null || need+=(uidmap)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "==> installing ${need[*]} (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	exit 0
fi
echo "make demo needs ${need[*]}; install them, then run make demo again:" >&2
echo "    sudo apt-get install ${need[*]}" >&2
exit 1
