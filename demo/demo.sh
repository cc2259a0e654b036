#!/usr/bin/env bash
# `make demo`: make a Debian bookworm image from the Debian mirror, build an environment
# with two packages in it, and run commands inside. Needs only a Debian mirror: no image
# server, no container registry. As root it uses debootstrap; as a user, mmdebstrap in
# unshare mode (both are Debian packages).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=${KARAPACE_DEMO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/karapace-demo}
mirror=${KARAPACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
karapace=("$top/bin/karapace" --store "$work/store")
mkdir -p "$work"

image="$work/bookworm-minbase.tar.gz"
if [ ! -f "$image" ]; then
	echo "==> making a Debian bookworm image from $mirror (once; about a minute)"
	rm -rf "$work/rootfs" "$image.tmp"
	if [ "$(id -u)" = 0 ]; then
		debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log"
		tar --numeric-owner -C "$work/rootfs" -czf "$image.tmp" .
		rm -rf "$work/rootfs"
	else
		mmdebstrap --quiet --mode=unshare --variant=minbase --format=tar bookworm - "$mirror" | gzip -1 >"$image.tmp"
	fi
	mv "$image.tmp" "$image"
fi

cat >"$work/karapace.toml" <<TOML
manifest_version = 1

[base]
image = "$image"

[system]
packages = ["hello", "jq"]
TOML

echo "==> karapace build (resolves exact versions with apt, writes karapace.lock)"
"${karapace[@]}" build --name demo "$work/karapace.toml"
echo "==> the lock pins:"
grep -A1 'name = ' "$work/karapace.lock"
echo "==> karapace exec demo -- hello"
"${karapace[@]}" exec demo -- hello
echo "==> karapace exec demo -- jq"
echo '{"karapace": "works"}' | "${karapace[@]}" exec demo -- jq -r .karapace
echo "==> karapace list"
"${karapace[@]}" list
echo
echo "Enter it with: ${karapace[*]} enter demo"
