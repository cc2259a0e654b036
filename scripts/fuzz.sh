#!/usr/bin/env bash
# Run every fuzz target of the workspace, one after the other, for a set time each.
# Not part of CI (`make test` runs the seed corpora and the kept crashers only).
#
#   scripts/fuzz.sh [-l] [-t 30s] [-p PARALLEL] [REGEXP]
#
# -l lists the targets and exits. -t defaults to $FUZZTIME or 30s, -p to $FUZZPARALLEL
# or the number of CPUs.
# REGEXP (default: all) selects targets by "<package> <FuzzName>". When a target finds a
# failing input, `go test -fuzz` writes it to <package>/testdata/fuzz/<FuzzName>/<hash>;
# from then on plain `go test` replays it, so it is a regression test as soon as it is
# committed. The script keeps going, then lists the failures and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-30s}"
parallel="${FUZZPARALLEL:-$(nproc)}"
list=0
while getopts "lt:p:h" opt; do
	case "$opt" in
	l) list=1 ;;
	t) fuzztime="$OPTARG" ;;
	p) parallel="$OPTARG" ;;
	*) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
filter="${1:-.}"

# Every package of every module in go.work, then the fuzz targets each one lists.
mapfile -t modules < <(go list -m -f '{{.Dir}}')
targets=()
for dir in "${modules[@]}"; do
	mapfile -t pkgs < <(cd "$dir" && go list ./... 2>/dev/null)
	for pkg in "${pkgs[@]}"; do
		grep -lqs '^func Fuzz' "$(cd "$dir" && go list -f '{{.Dir}}' "$pkg")"/*_test.go || continue
		while read -r name; do
			[[ "$name" == Fuzz* ]] || continue
			if [[ "$pkg $name" =~ $filter ]]; then
				targets+=("$dir|$pkg|$name")
			fi
		done < <(cd "$dir" && go test -list '^Fuzz' "$pkg" 2>/dev/null)
	done
done

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches '$filter'" >&2
	exit 2
fi
if [ "$list" = 1 ]; then
	for t in "${targets[@]}"; do IFS='|' read -r _ pkg name <<<"$t"; echo "$pkg $name"; done
	exit 0
fi
echo "fuzz.sh: ${#targets[@]} targets, $fuzztime each, -parallel $parallel"
failed=()
for t in "${targets[@]}"; do
	IFS='|' read -r dir pkg name <<<"$t"
	echo "=== $pkg $name"
	if ! (cd "$dir" && go test -run "^${name}\$" -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel "$parallel" "$pkg"); then
		pkgdir="$(cd "$dir" && go list -f '{{.Dir}}' "$pkg")"
		failed+=("$pkg $name (failing inputs kept in ${pkgdir#"$PWD"/}/testdata/fuzz/$name/)")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo
	echo "fuzz.sh: ${#failed[@]} target(s) failed; commit their testdata/fuzz inputs with the fix:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran $fuzztime without a failure"
